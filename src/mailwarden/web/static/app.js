// Mailwarden console: progressive enhancements only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The menu is a <details>: open it on wide screens so it behaves like a plain nav bar.
  const menu = document.querySelector(".nav-menu");
  if (menu && window.matchMedia("(min-width: 769px)").matches) {
    menu.open = true;
  }
});
