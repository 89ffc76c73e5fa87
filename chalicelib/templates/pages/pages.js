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

  // Console People lists: "All on this page" ticks every row's box as it is ticked (the server honours it without
  // JavaScript too), and shows itself part-ticked when only some rows are. Does nothing on any other page.
  each(document.querySelectorAll("input[data-select-all]"), function (all) {
    var form = all.form;
    if (!form) { return; }
    var rows = form.querySelectorAll("input[data-select-row]");
    function sync() {
      var ticked = Array.prototype.filter.call(rows, function (row) { return row.checked; }).length;
      all.checked = rows.length > 0 && ticked === rows.length;
      all.indeterminate = ticked > 0 && ticked < rows.length;
    }
    all.addEventListener("change", function () {
      each(rows, function (row) { row.checked = all.checked; });
      all.indeterminate = false;
    });
    each(rows, function (row) { row.addEventListener("change", sync); });
    if (Array.prototype.some.call(rows, function (row) { return row.checked; })) { sync(); }
  });
}());

// Console, Customers: the Copy button beside a secure access link shown once (customer-access-link.html). Only a
// page with such a button has any; without JavaScript the button stays hidden and the read-only field is selected
// and copied by hand.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button.copy[data-copy]");
  if (!buttons.length) { return; }
  Array.prototype.forEach.call(buttons, function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!input) { return; }
    button.hidden = false;
    function said(words) { if (status) { status.textContent = words; } }
    button.addEventListener("click", function () {
      input.focus();
      input.select();
      // data-copied / data-copy-by-hand: other words for another kind of value (Apps: a client secret)
      var done = function () {
        said(button.getAttribute("data-copied") || "Copied. Paste it into your message to the customer.");
      };
      var byHand = function () {
        said(button.getAttribute("data-copy-by-hand") || "Press Ctrl+C (Cmd+C on a Mac) to copy the selected link.");
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          try { if (document.execCommand("copy")) { done(); return; } } catch (e) { /* fall through */ }
          byHand();
        });
      } else {
        try { if (document.execCommand("copy")) { done(); return; } } catch (e) { /* fall through */ }
        byHand();
      }
    });
  });
}());

// Console, Bulk invite users: while a job is being read or sent, its page loads itself again every few seconds
// (an element with data-reload-seconds; the server renders it only then) until the status changes, with a "Stop
// refreshing" button (WCAG 2.2.1: a person can turn it off). Without JavaScript the page has a "refresh now" link.
(function () {
  "use strict";
  var holder = document.querySelector("[data-reload-seconds]");
  if (!holder) { return; }
  var seconds = parseInt(holder.getAttribute("data-reload-seconds"), 10) || 3;
  var stop = holder.querySelector("button[data-reload-stop]");
  var timer = window.setTimeout(function () {
    var query = new URLSearchParams(window.location.search);
    query.delete("done");  // the notice of the action was read already
    var rest = query.toString();
    window.location.replace(window.location.pathname + (rest ? "?" + rest : ""));
  }, seconds * 1000);
  if (stop) {
    stop.hidden = false;
    stop.addEventListener("click", function () {
      window.clearTimeout(timer);
      stop.hidden = true;
      var said = holder.querySelector("[data-reload-said]");
      if (said) { said.textContent = "This page no longer refreshes itself."; }
    });
  }
}());
