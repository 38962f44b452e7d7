// The follow-up and figures pages' charts (uPlot, from static/vendor/ installed by `make
// assets`): each month's figure as bars against the monthly share of the target (dashed).
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", function () {
    const root = document.querySelector("[data-chart]");
    if (root && window.uPlot) {
      drawFigures(root);
    }
  });

  // A refused request that answers with a message (a reveal without a reason) shows it in
  // place instead of being dropped, as htmx does with error answers by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A poll refused because the session ended is said on the page, not silently dropped
  // (the counts would otherwise stay as they were).
  document.addEventListener("htmx:responseError", function (event) {
    const status = document.getElementById("poll-status");
    if (status) {
      status.hidden = false;
      status.textContent =
        event.detail.xhr.status === 401
          ? "로그인이 끝났습니다. 페이지를 새로 열어 다시 로그인하세요."
          : "새 숫자를 받지 못했습니다 (" + event.detail.xhr.status + "). 잠시 뒤 다시 시도합니다.";
    }
  });
  document.addEventListener("htmx:afterSwap", function () {
    const status = document.getElementById("poll-status");
    if (status) {
      status.hidden = true;
    }
  });

  function drawFigures(root) {
    const data = JSON.parse(root.dataset.chart);
    const bars = window.uPlot.paths.bars({ size: [0.6, 60] });
    root.querySelectorAll(".chart").forEach(function (box) {
      const name = box.dataset.figure;
      const target = data[name + "_target"];
      const values = data[name];
      const goal = data.months.map(function () {
        return target === null ? null : target;
      });
      const width = Math.max(box.clientWidth || 320, 280);
      const chart = new window.uPlot(
        {
          width: width,
          height: 240,
          scales: { x: { time: false } },
          legend: { show: true },
          series: [
            { label: "월" },
            {
              label: box.dataset.label,
              stroke: "#234",
              fill: "rgba(35,68,119,.55)",
              paths: bars,
              points: { show: false },
            },
            { label: "월 목표", stroke: "#b3261e", dash: [6, 4], width: 2, points: { show: false } },
          ],
          axes: [{ values: (u, ticks) => ticks.map((t) => t + "월") }, { size: 56 }],
        },
        [data.months, values, goal],
        box,
      );
      box.dataset.drawn = String(chart.data[0].length);
    });
  }
})();
