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

// The case page: reveal fetches the clear preview only on request; one-key shortcuts for the common decisions.
(function () {
  function setMedia(button, revealed) {
    var img = button.querySelector("img");
    var label = button.querySelector("[data-reveal-label]");
    img.src = revealed ? button.getAttribute("data-clear-src") : button.getAttribute("data-blurred-src");
    button.setAttribute("aria-pressed", revealed ? "true" : "false");
    if (label) {
      label.textContent = revealed ? "Blur again (V)" : "Reveal (V)";
    }
  }

  function typing(target) {
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    return tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable);
  }

  // A one-key removal is one slip away from a wrong removal: the first press (or click) arms the button, the
  // second one submits, Escape disarms.
  function disarm() {
    var armed = document.querySelectorAll("[data-confirm][data-armed]");
    for (var i = 0; i < armed.length; i++) {
      armed[i].textContent = armed[i].getAttribute("data-label");
      armed[i].removeAttribute("data-armed");
      armed[i].classList.remove("armed");
    }
  }

  function guard(button) {
    button.setAttribute("data-label", button.textContent);
    button.addEventListener("click", function (event) {
      if (button.hasAttribute("data-armed")) {
        return;  // confirmed: the form submits
      }
      event.preventDefault();
      disarm();
      button.setAttribute("data-armed", "");
      button.classList.add("armed");
      button.textContent = button.getAttribute("data-confirm") + " (Esc cancels)";
      button.focus();
    });
  }

  function init() {
    var confirms = document.querySelectorAll("[data-confirm]");
    for (var c = 0; c < confirms.length; c++) {
      guard(confirms[c]);
    }
    var media = document.querySelector("[data-reveal-media]");
    if (media) {
      media.addEventListener("click", function () {
        setMedia(media, media.getAttribute("aria-pressed") !== "true");
      });
    }
    if (!document.querySelector("[data-case]")) {
      return;
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        disarm();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) {
        return;  // a held key must not submit twice
      }
      var key = event.key.toLowerCase();
      if (!/^[a-z]$/.test(key)) {
        return;
      }
      if (key === "v" && media && !media.disabled) {
        event.preventDefault();
        media.click();
        return;
      }
      var button = document.querySelector('[data-key="' + key + '"]');
      if (!button) {
        return;
      }
      event.preventDefault();
      var form = button.form;
      var required = form ? form.querySelector("input[required]") : null;
      if (required && !required.value) {
        required.focus();  // escalating needs a reason first
        return;
      }
      button.click();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
