// The desk's face page (docs/face.md): the webcam through getUserMedia, photos taken as JPEG
// in memory and posted to the face API, which describes them and keeps none. No library.
(function () {
  "use strict";
  const root = document.getElementById("face");
  const member = root.dataset.member;
  const api = "/api/v1/registry/members/" + encodeURIComponent(member) + "/face";
  const token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const video = document.getElementById("camera");
  const canvas = document.getElementById("frame");
  const message = document.getElementById("message");
  const count = document.getElementById("photo-count");
  let photos = [];

  function say(text, bad) {
    message.textContent = text;
    message.className = bad ? "error" : "info";
  }

  async function post(path, body) {
    const answer = await fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await answer.json(); } catch (e) { data = {}; }
    return { ok: answer.ok, status: answer.status, data: data };
  }

  function detail(data) {
    // One message per refused photo (422), or the refusal's own text.
    if (Array.isArray(data.detail)) { return data.detail.map((d) => d.msg).join(" "); }
    return data.detail || "요청을 처리하지 못했습니다.";
  }

  document.getElementById("record-consent").addEventListener("click", async () => {
    const formId = document.getElementById("form-id").value.trim();
    if (!formId) { say("동의서 번호를 입력하세요.", true); return; }
    const r = await post("/consent", { form_id: formId });
    if (r.ok) {
      document.getElementById("consent-state").textContent = "동의 기록됨: 동의서 " + formId;
      document.getElementById("consent-state").className = "info";
      say("동의를 기록했습니다. 이제 사진을 찍으세요.", false);
    } else { say(detail(r.data), true); }
  });

  document.getElementById("start-camera").addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      say("카메라가 켜졌습니다. 회원이 정면을 보면 '사진 찍기'를 누르세요.", false);
    } catch (e) {
      say("카메라를 열 수 없습니다: " + e.name, true);
    }
  });

  document.getElementById("take-photo").addEventListener("click", () => {
    if (!video.srcObject) { say("먼저 카메라를 켜세요.", true); return; }
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    photos.push(canvas.toDataURL("image/jpeg", 0.92));
    if (photos.length > 5) { photos.shift(); }
    count.textContent = photos.length + "장";
  });

  document.getElementById("enrol").addEventListener("click", async () => {
    if (!photos.length) { say("사진을 한 장 이상 찍으세요.", true); return; }
    say("등록하는 중입니다…", false);
    const r = await post("/enrol", { photos: photos });
    photos = [];  // never kept in the page either
    count.textContent = "0장";
    if (r.ok) { say("등록했습니다 (" + r.data.photos_used + "장). 1분 안에 키오스크에 전달됩니다.", false); }
    else { say(detail(r.data), true); }
  });

  document.getElementById("withdraw").addEventListener("click", async () => {
    if (!window.confirm("얼굴인식 동의를 철회하고 얼굴 정보를 삭제할까요?")) { return; }
    const r = await post("/withdraw");
    if (r.ok) {
      document.getElementById("consent-state").textContent = "동의 철회됨. 얼굴 정보를 삭제했습니다.";
      document.getElementById("consent-state").className = "error";
      say("철회했습니다. 센터와 키오스크에서 얼굴 정보가 지워집니다.", false);
    } else { say(detail(r.data), true); }
  });
})();
