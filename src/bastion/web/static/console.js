// Bastion console: the little behaviour the pages need. Loaded as a file: the CSP forbids inline scripts.
"use strict";

(function () {
  function setRevealed(button, revealed) {
    var img = button.querySelector("img");
    var label = button.querySelector("[data-reveal-label]");
    if (img) {
      img.classList.toggle("blurred", !revealed);
    }
    button.setAttribute("aria-pressed", revealed ? "true" : "false");
    button.setAttribute("aria-label", revealed ? "Click to blur the uploaded image again"
      : "Click to reveal the uploaded image");
    if (label) {
      label.textContent = revealed ? "Click to blur again" : "Click to reveal";
    }
  }

  function init() {
    var buttons = document.querySelectorAll("[data-reveal]");
    for (var i = 0; i < buttons.length; i++) {
      (function (button) {
        setRevealed(button, false);
        button.addEventListener("click", function () {
          setRevealed(button, button.getAttribute("aria-pressed") !== "true");
        });
      })(buttons[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
