// The operator dashboard's behaviour: acknowledging with the session, and the charts (uPlot).
// htmx (static/vendor/, installed by `make assets` from npm) polls the server-rendered parts.
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", function () {
    const charts = document.getElementById("charts");
    if (charts) {
      startCharts(charts);
    }
  });

  // An acknowledgement is sent by the signed-in operator's session: the server records who,
  // and wants the session's CSRF token with every request that changes something.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb === "get") {
      return;
    }
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });

  // A refused acknowledgement (session ended, no permission) is said, not swallowed.
  document.addEventListener("htmx:responseError", function (event) {
    const error = document.getElementById("ack-error");
    if (error) {
      error.hidden = false;
      error.textContent =
        event.detail.xhr.status === 401
          ? "로그인이 끝났습니다. 페이지를 새로 열어 다시 로그인하세요."
          : "확인을 기록하지 못했습니다 (" + event.detail.xhr.status + ").";
    }
  });

  // After an acknowledgement, redraw the part of the page that lists it.
  document.addEventListener("htmx:afterRequest", function (event) {
    const source = event.detail.elt;
    if (!source || !source.dataset || !source.dataset.refresh || !event.detail.successful) {
      return;
    }
    const region = source.closest("[hx-trigger]");
    if (region) {
      window.htmx.trigger(region, "refresh");
    }
  });

  function series(history) {
    const beats = history.heartbeats.map(function (b) {
      return [Date.parse(b.received_at) / 1000, b.outbox_pending, b.gap_s];
    });
    const taps = history.taps.map(function (t) {
      return [Date.parse(t.hour) / 1000, t.accepted, t.refused];
    });
    return {
      backlog: [beats.map((b) => b[0]), beats.map((b) => b[1])],
      gaps: [beats.map((b) => b[0]), beats.map((b) => b[2])],
      taps: [taps.map((t) => t[0]), taps.map((t) => t[1]), taps.map((t) => t[2])],
    };
  }

  // Every chart spans the same window, so their hours line up.
  const span = { since: 0, until: 0 };

  function options(root, title, lines) {
    const tz = root.dataset.tz;
    const width = Math.max(root.querySelector(".chart").clientWidth || 480, 320);
    return {
      width: width,
      height: 220,
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), tz),
      legend: { show: true },
      scales: { x: { time: true, range: () => [span.since, span.until] } },
      series: [{ label: "시각" }].concat(lines),
      axes: [{}, { size: 50 }],
    };
  }

  function startCharts(root) {
    const bars = window.uPlot.paths.bars({ size: [0.6, 40] });
    const charts = {};
    const limit = Number(root.dataset.offlineAfter);
    function draw(history) {
      const data = series(history);
      span.since = Date.parse(history.since) / 1000;
      span.until = Date.parse(history.until) / 1000;
      if (!charts.backlog) {
        charts.backlog = new window.uPlot(
          options(root, "backlog", [
            { label: "미전송", stroke: "#a15c00", fill: "rgba(161,92,0,.12)", width: 2 },
          ]),
          data.backlog,
          document.getElementById("chart-backlog"),
        );
        const gapOptions = options(root, "gaps", [
          { label: "간격(초)", stroke: "#0b57d0", width: 0, points: { show: true, size: 5 } },
        ]);
        gapOptions.hooks = {
          draw: [
            function (u) {
              // The offline threshold as a dashed line: a gap above it would mean offline.
              const y = u.valToPos(limit, "y", true);
              if (!Number.isFinite(y)) {
                return;
              }
              const ctx = u.ctx;
              ctx.save();
              ctx.setLineDash([6, 4]);
              ctx.strokeStyle = "#b3261e";
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y);
              ctx.lineTo(u.bbox.left + u.bbox.width, y);
              ctx.stroke();
              ctx.restore();
            },
          ],
        };
        gapOptions.scales.y = { range: (u, min, max) => [0, Math.max(max || 0, limit) * 1.1] };
        charts.gaps = new window.uPlot(gapOptions, data.gaps, document.getElementById("chart-gaps"));
        charts.taps = new window.uPlot(
          options(root, "taps", [
            {
              label: "승인",
              stroke: "#1b7f3b",
              fill: "rgba(27,127,59,.5)",
              paths: bars,
              points: { show: false },
            },
            {
              label: "거절",
              stroke: "#b3261e",
              fill: "rgba(179,38,30,.5)",
              paths: bars,
              points: { show: false },
            },
          ]),
          data.taps,
          document.getElementById("chart-taps"),
        );
      } else {
        charts.backlog.setData(data.backlog);
        charts.gaps.setData(data.gaps);
        charts.taps.setData(data.taps);
      }
      root.dataset.points = String(data.backlog[0].length);
      root.dataset.loaded = String(Date.now());
    }
    function load() {
      fetch(root.dataset.history, { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
        .then(draw)
        .catch(function (reason) {
          root.dataset.error = String(reason);
        });
    }
    window.fleetCharts = charts;
    load();
    window.setInterval(load, Number(root.dataset.refreshS) * 1000);
  }
})();
