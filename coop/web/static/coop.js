// Small conveniences; every page works without this script.
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
