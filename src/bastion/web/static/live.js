// Keeps the parts of a page marked data-live (with an id) current: fetches the same page every few seconds and
// swaps those parts in, so a provider's answer shows without a reload. Forms are never marked, so typing is safe.
(function () {
  "use strict";
  const parts = Array.from(document.querySelectorAll("[data-live][id]"));
  if (!parts.length) return;
  const INTERVAL_MS = 2000;
  // A running clock (static/orders.js) keeps its own second: the server's rendering of it is not a change.
  function keepClocks(shown, next) {
    const live = new Map();
    for (const el of shown.querySelectorAll(".countdown[data-deadline]")) live.set(el.dataset.deadline, el);
    for (const el of next.querySelectorAll(".countdown[data-deadline]")) {
      const same = live.get(el.dataset.deadline);
      if (same) {
        el.textContent = same.textContent;
        const row = el.closest("tr"), shownRow = same.closest("tr");
        if (row && shownRow) row.className = shownRow.className;
      }
    }
  }
  async function refresh() {
    try {
      const response = await fetch(window.location.pathname, {credentials: "same-origin", cache: "no-store"});
      if (!response.ok || response.redirected) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of parts) {
        const next = fresh.getElementById(part.id);
        if (!next) continue;
        keepClocks(part, next);
        if (next.innerHTML !== part.innerHTML) part.innerHTML = next.innerHTML;
      }
    } catch (e) {
      // Offline for a moment: the next round tries again.
    }
  }
  setInterval(refresh, INTERVAL_MS);
})();
