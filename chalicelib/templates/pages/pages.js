// The hosted pages' one script (served by the app, CSP script-src 'self'): a "Show password" button on every
// password field. The buttons are in the page, hidden; this script shows them and makes them work. Without
// JavaScript they stay hidden and every password field is an ordinary password field.
(function () {
  "use strict";
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  function field(button) { return document.getElementById(button.getAttribute("aria-controls")); }

  each(document.querySelectorAll("button.reveal[aria-controls]"), function (button) {
    var input = field(button);
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
    });
  });

  // Hidden again when the form is sent, so no browser keeps a password as ordinary typed text.
  each(document.forms, function (form) {
    form.addEventListener("submit", function () {
      each(form.querySelectorAll("button.reveal[aria-controls]"), function (button) {
        var input = field(button);
        if (input) { input.type = "password"; }
        button.setAttribute("aria-pressed", "false");
      });
    });
  });
}());
