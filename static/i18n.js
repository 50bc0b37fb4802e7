// The scripts' words in the page's language: the server sends the translations of their messages as a JSON
// block (templates/base.html, id "i18n-messages"; the CSP forbids inline scripts, a data block is not one).
// window.layerwiseText("Not done: %(detail)s", { detail }) looks a message up and fills its placeholders;
// each script calls it `_` so `python -m server.web.i18n extract` finds the messages.
(function () {
  "use strict";
  let messages = {};
  try {
    const block = document.getElementById("i18n-messages");
    messages = block ? JSON.parse(block.textContent || "{}") : {};
  } catch (_) { messages = {}; }
  window.layerwiseText = function (message, values) {
    return (messages[message] || message).replace(/%\((\w+)\)s/g,
      (all, name) => (values && name in values ? String(values[name]) : all));
  };
})();
