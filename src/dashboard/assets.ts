/**
 * The dashboard's only script and stylesheet, served by the dashboard itself (no CDN, no build
 * step). The script refreshes the overview's live part every few seconds (polling: it works
 * through any proxy) and draws the chart. Actions that touch more than one task are confirmed by a
 * page the server renders (see app.ts), not by the script: they work with scripts off.
 */

export const DASHBOARD_JS = `"use strict";
(function () {
  // The finished-per-minute chart (uPlot), from the numbers the page carries.
  function draw() {
    var el = document.getElementById("chart");
    if (!el || !window.uPlot || el.dataset.drawn) return;
    el.dataset.drawn = "1";
    var data = JSON.parse(el.dataset.points || "[[],[]]");
    new window.uPlot({ width: Math.min(900, el.clientWidth || 900), height: 180, scales: { x: { time: true } },
      series: [{}, { label: "finished", stroke: "#2f6fdb", fill: "rgba(47,111,219,0.12)" }] }, data, el);
  }
  draw();
  var live = document.getElementById("live");
  if (live && live.dataset.refresh) {
    setInterval(function () {
      fetch(live.dataset.refresh, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (text === null) return;
          var doc = new DOMParser().parseFromString(text, "text/html");
          var next = doc.getElementById("live");
          if (next) live.replaceChildren.apply(live, Array.prototype.slice.call(next.childNodes));
          draw();
        })
        .catch(function () {});
    }, 5000);
  }
})();
`;

export const DASHBOARD_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
nav{padding:.6em 1em;background:#1d2330;color:#fff}nav a{color:#cfe0ff;margin-right:1em}nav .ro{color:#ffd37a}
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0 1.2em}th,td{border-bottom:1px solid #e3e6ea;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f2f5}form.inline{display:inline}.filters{margin-bottom:1em}.filters .field{margin-left:.6em}
pre{background:#f0f2f5;padding:.6em;overflow:auto;max-width:100%}.message{padding:.6em;background:#fff6d6;border:1px solid #f0d98a}
table.fields th{width:14em}nav .logout{float:right}
`;
