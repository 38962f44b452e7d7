// The desk and field pages work without script; this adds comforts only.
"use strict";

(function () {
  // A form sent once stays sent: a second tap while the tablet waits does not send it again
  // (the server's form key makes a resend harmless anyway).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.sent === "1" && form.method.toLowerCase() === "post") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (b) {
      b.setAttribute("aria-busy", "true");
    });
  });

  // A page shown again with messages puts the cursor on the first field to fix.
  document.addEventListener("DOMContentLoaded", function () {
    const bad = document.querySelector("[aria-invalid=true]");
    if (bad) {
      const input = bad.matches("input,select,textarea") ? bad : bad.querySelector("input");
      if (input) {
        input.focus();
      }
    }
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () {
        window.print();
      });
    });
  });
})();
