// Small conveniences; every page works without this script.
//
// A page that shows a score being computed ([data-computing], with a "Check again" link for
// browsers without this script) checks again by itself every few seconds, and once the
// result is there shows the page's new content in place and moves focus to the result.
//
// Sign-up hands the email to the login form that follows, in this browser tab only
// (sessionStorage): the server never puts an email in a cookie or a URL.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const KEY = "coop.signup-email";
  const signup = document.querySelector("form[action='/signup']");
  if (signup) {
    signup.addEventListener("submit", () => {
      sessionStorage.setItem(KEY, signup.elements.namedItem("email").value);
    });
  }
  const computing = document.querySelector("[data-computing]");
  if (computing) {
    let tries = 0;
    const check = async () => {
      tries += 1;
      try {
        const response = await fetch(window.location.href, { credentials: "same-origin" });
        if (response.ok) {
          const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
          const main = fresh.querySelector("main");
          if (main && !main.querySelector("[data-computing]")) {
            const flashes = document.querySelector(".flashes");
            if (flashes) flashes.remove();
            document.querySelector("main").replaceChildren(...main.childNodes);
            const result = document.querySelector("main .run-state, main .no-score");
            if (result) {
              result.setAttribute("tabindex", "-1");
              result.focus();
            }
            return;
          }
        }
      } catch (error) {
        // Offline for a moment: try again below.
      }
      if (tries < 90) window.setTimeout(check, 2000);
    };
    window.setTimeout(check, 2000);
  }
  const login = document.querySelector("form[action='/login']");
  if (login) {
    const email = login.elements.namedItem("email");
    const kept = sessionStorage.getItem(KEY);
    sessionStorage.removeItem(KEY);
    if (kept && !email.value) {
      email.value = kept;
      login.elements.namedItem("password").focus();
    }
  }
});
