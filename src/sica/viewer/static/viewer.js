// sica view: the chart's tooltip and the live updates. Everything shown is set with textContent, never as HTML:
// the text comes from what agents wrote.
"use strict";

function showTooltips() {
  const tip = document.getElementById("tooltip");
  if (!tip) return;
  for (const point of document.querySelectorAll("#progress g.point")) {
    point.addEventListener("mouseenter", (event) => {
      tip.textContent = point.dataset.change || "";
      tip.hidden = false;
      tip.style.left = `${event.pageX + 12}px`;
      tip.style.top = `${event.pageY + 12}px`;
    });
    point.addEventListener("mouseleave", () => { tip.hidden = true; });
  }
}

function appendEvent(row) {
  const body = document.querySelector("#events tbody");
  if (!body) return;
  const tr = document.createElement("tr");
  tr.className = "live";
  for (const value of [row.index, row.time, row.agent, row.type, row.text]) {
    const td = document.createElement("td");
    td.textContent = String(value);
    tr.appendChild(td);
  }
  body.appendChild(tr);
  document.body.dataset.next = String(row.index + 1);
}

function followAttempt(stream) {
  const source = new EventSource(`${stream}?next=${encodeURIComponent(document.body.dataset.next || "0")}`);
  source.addEventListener("agent-event", (message) => appendEvent(JSON.parse(message.data)));
  source.addEventListener("end", () => {
    // Over: its verdict, ledger and diff are written now, so the page is loaded again to show them.
    source.close();
    const status = document.getElementById("attempt-status");
    if (status) {
      status.textContent = "finished";
      status.className = "status finished";
    }
    setTimeout(() => window.location.reload(), 500);
  });
}

function followRun(stream) {
  const source = new EventSource(stream);
  let pending = null;
  const reload = () => {
    // At most one reload in three seconds, however often a busy run writes.
    if (pending === null) pending = setTimeout(() => window.location.reload(), 3000);
  };
  source.addEventListener("changed", reload);
  source.addEventListener("end", () => { source.close(); reload(); });
}

document.addEventListener("DOMContentLoaded", () => {
  showTooltips();
  const stream = document.body.dataset.stream;
  if (!stream) return;
  if (document.getElementById("events")) followAttempt(stream);
  else followRun(stream);
});
