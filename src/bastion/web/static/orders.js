// The one-hour clock of each waiting removal order, kept live from its deadline (the page shows the server's value).
(function () {
  "use strict";
  const table = document.querySelector("table.orders");
  if (!table) return;
  // Offset between the server's clock and this browser's, so a wrong local clock does not shift the deadline.
  const skew = Date.parse(table.dataset.now) - Date.now();
  function label(seconds) {
    const whole = Math.abs(Math.trunc(seconds));
    const text = Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
    return seconds >= 0 ? text + " left" : "overdue by " + text;
  }
  function tick() {
    const now = Date.now() + skew;
    for (const el of document.querySelectorAll(".countdown[data-deadline]")) {
      const left = (Date.parse(el.dataset.deadline) - now) / 1000;
      el.textContent = label(left);
      el.closest("tr").classList.toggle("overdue", left < 0);
    }
  }
  tick();
  setInterval(tick, 1000);
})();
