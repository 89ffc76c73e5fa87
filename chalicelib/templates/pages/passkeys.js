// Passkeys (issue 18): the one script of the pages that use one (served by the app at /assets/passkeys.js, CSP
// script-src 'self'; no inline script). WebAuthn exists only in JavaScript, so each passkey form of a page works
// through it:
//
//   <form method="post" data-passkey="create|get" data-passkey-options="{...the options JSON...}">
//     <input type="hidden" name="credential">   filled with the browser's answer, as JSON, then the form is sent
//     [data-passkey-needs-js]                   words shown without JavaScript; hidden here
//     [data-passkey-unsupported] (hidden)       shown when the browser has no passkeys
//     [data-passkey-controls] (hidden)          the fields and the button; shown here
//     [data-passkey-status]                     what happened, in words (role=status)
//
// The options are the server's (a challenge it issued for this page and this purpose); the answer is checked on
// the server. Without JavaScript the words say a passkey needs it, and the page's other ways still work.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-passkey]");
  if (!forms.length) { return; }
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  var supported = !!(window.PublicKeyCredential && navigator.credentials && navigator.credentials.create &&
                     navigator.credentials.get && window.JSON && window.Uint8Array);

  function bytes(text) {  // base64url -> ArrayBuffer
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = window.atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }
  function text(buffer) {  // ArrayBuffer -> base64url
    var view = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < view.length; i += 1) { raw += String.fromCharCode(view[i]); }
    return window.btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) {
      var found = {type: d.type, id: bytes(d.id)};
      if (d.transports) { found.transports = d.transports; }
      return found;
    });
  }

  function creationOptions(json) {
    var o = JSON.parse(JSON.stringify(json));
    o.challenge = bytes(json.challenge);
    o.user = {id: bytes(json.user.id), name: json.user.name, displayName: json.user.displayName};
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }
  function requestOptions(json) {
    var o = JSON.parse(JSON.stringify(json));
    o.challenge = bytes(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  function answer(credential, kind) {  // the JSON the server reads (PublicKeyCredential.toJSON()'s shape)
    var r = credential.response, response = {clientDataJSON: text(r.clientDataJSON)};
    if (kind === "create") {
      response.attestationObject = text(r.attestationObject);
      if (typeof r.getTransports === "function") { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = text(r.authenticatorData);
      response.signature = text(r.signature);
      if (r.userHandle) { response.userHandle = text(r.userHandle); }
    }
    var found = {id: credential.id, rawId: text(credential.rawId), type: credential.type, response: response,
                 clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}};
    if (credential.authenticatorAttachment) { found.authenticatorAttachment = credential.authenticatorAttachment; }
    return found;
  }

  function words(error, kind) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      return "The passkey was not used: it was cancelled or took too long. Try again, or use another way.";
    }
    if (name === "InvalidStateError" && kind === "create") {
      return "This device already has a passkey for your account: you can use that one.";
    }
    if (name === "SecurityError") {
      return "Passkeys do not work at this address. Use another way to sign in, and tell your administrator.";
    }
    if (name === "NotSupportedError") {
      return "This device cannot make a passkey of the kind needed here. Try another device, or use another way.";
    }
    return "Your browser could not use a passkey. Try again, or use another way.";
  }

  each(forms, function (form) {
    var kind = form.getAttribute("data-passkey") === "create" ? "create" : "get";
    var status = form.querySelector("[data-passkey-status]");
    var field = form.querySelector("input[name=credential]");
    function say(message) { if (status) { status.textContent = message; } }
    each(form.querySelectorAll("[data-passkey-needs-js]"), function (el) { el.hidden = true; });
    if (!supported) {
      each(form.querySelectorAll("[data-passkey-unsupported]"), function (el) { el.hidden = false; });
      return;
    }
    each(form.querySelectorAll("[data-passkey-controls]"), function (el) { el.hidden = false; });
    var busy = false;
    form.addEventListener("submit", function (event) {
      if (field.value) { return; }  // the answer is in: let the form go
      event.preventDefault();
      if (busy || (form.reportValidity && !form.reportValidity())) { return; }
      var options;
      try {
        options = JSON.parse(form.getAttribute("data-passkey-options"));
      } catch (e) {
        say("This page is out of date: load it again.");
        return;
      }
      busy = true;
      say(kind === "create" ? "Follow your browser's steps to make the passkey…"
                            : "Follow your browser's steps to use your passkey…");
      var ceremony = kind === "create"
        ? navigator.credentials.create({publicKey: creationOptions(options)})
        : navigator.credentials.get({publicKey: requestOptions(options)});
      ceremony.then(function (credential) {
        field.value = JSON.stringify(answer(credential, kind));
        say("Checking…");
        form.submit();
      }, function (error) {
        busy = false;
        say(words(error, kind));
      });
    });
  });
}());
