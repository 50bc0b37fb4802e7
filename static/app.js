// Layerwise page behaviour: slot dialog, live updates, install prompt, service worker (scanning: scan.js).
// Everything else is server-rendered HTML swapped in by htmx.
(function () {
  "use strict";
  const _ = window.layerwiseText;
  const dialog = document.getElementById("slot-dialog");
  const body = document.getElementById("dialog-body");
  const live = document.getElementById("live");
  const toast = document.getElementById("toast");
  let opener = null; // id of the tile that opened the dialog, to give focus back

  // ----- slot dialog ------------------------------------------------------------------------
  const focusable = () => Array.from(dialog.querySelectorAll(
    "a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex]:not([tabindex='-1'])"
  )).filter((el) => el.offsetParent !== null);

  // afterSettle, not afterSwap: htmx wires up swapped-in controls (the search box's hx-trigger) only when it
  // settles, so a dialog shown at the swap takes taps and typing that nothing handles yet.
  document.body.addEventListener("htmx:afterSettle", (event) => {
    // (An answer with HX-Reswap: none still reports a swap: nothing to show then.)
    if (event.detail.target !== body || !body.firstElementChild) return;
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!dialog.open) {
      // Only a tile opens the dialog; an answer to a control inside it never reopens it.
      if (!elt || dialog.contains(elt)) return;
      opener = elt.id || null;
      dialog.showModal();
    }
    const title = body.querySelector("#dialog-title");
    (title || focusable()[0] || dialog).focus();
  });

  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    // Keep Tab inside the dialog: wrap from the last control to the first and back.
    const items = focusable();
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault(); first.focus();
    }
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a tap on the backdrop
    const action = event.target.closest("[data-action]");
    if (!action) return;
    const name = action.dataset.action;
    if (name === "close") dialog.close(); // scan and stop-scan: static/scan.js
  });
  dialog.addEventListener("close", () => {
    window.LayerwiseScan.stop();
    body.replaceChildren();
    const tile = opener && document.getElementById(opener);
    if (tile) tile.focus();
  });

  function say(message) {
    if (!message) return; // nothing to say: never an empty pill
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.hidden = true; }, 4000);
  }

  // The server answers a successful assign/unassign with an HX-Trigger naming this event.
  document.body.addEventListener("layerwise:changed", (event) => {
    if (dialog.open) dialog.close();
    say(event.detail.message);
    refresh(event.detail.printer);
  });

  // Done, but the dialog has a follow-up question (remember an RFID tag): refresh and keep it open.
  document.body.addEventListener("layerwise:refresh", (event) => {
    say(event.detail.message);
    refresh(event.detail.printer);
  });

  // htmx swaps nothing on an error status or a lost connection: say what happened instead of doing nothing.
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    let detail = "";
    try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (_) { /* not JSON */ }
    say(detail ? _("Not done: %(detail)s", { detail })
      : _("Not done: the server answered %(status)s. Reload the page and try again.", { status: xhr.status }));
  });
  document.body.addEventListener("htmx:sendError", () => {
    say(_("Layerwise cannot be reached. Check the network and try again."));
  });

  // ----- live updates -----------------------------------------------------------------------
  const pending = new Set();
  function refresh(printer) {
    pending.add(printer);
    clearTimeout(refresh.timer);
    refresh.timer = setTimeout(() => { // coalesce a burst of events into one request per printer
      for (const card of document.querySelectorAll("[data-printer-card]")) {
        // "layerwise:card", not the server's "layerwise:refresh": the event bubbles to the body, whose
        // "layerwise:refresh" listener would show an empty toast for every update.
        if (pending.has(null) || pending.has(card.dataset.printerCard)) htmx.trigger(card, "layerwise:card");
      }
      pending.clear();
    }, 100);
  }
  // Ledger views (the needs-attention list, the dashboard's badge) reload on ledger, job, slot and spool events.
  function refreshLedger() {
    clearTimeout(refreshLedger.timer);
    refreshLedger.timer = setTimeout(() => {
      for (const view of document.querySelectorAll("[data-ledger-live]")) htmx.trigger(view, "layerwise:ledger");
    }, 150);
  }
  function setLive(state, text) { live.dataset.state = state; live.textContent = text; }

  let source = null, seenHello = false, retry = 1000;
  function connect() {
    source = new EventSource("/events");
    source.addEventListener("hello", () => {
      setLive("live", _("Live"));
      if (seenHello) { refresh(null); refreshLedger(); } // back after a restart or a network loss: catch up
      seenHello = true; retry = 1000;
    });
    // "ledger" too: a card shows how many of its printer's bills wait for a person.
    for (const kind of ["printer", "slot", "job", "ledger", "forecast"]) {
      source.addEventListener(kind, (event) => {
        let printer = null;
        try { printer = JSON.parse(event.data).printer || null; } catch (_) { /* refresh all */ }
        refresh(printer);
      });
    }
    for (const kind of ["job", "slot", "spool", "ledger", "forecast"]) source.addEventListener(kind, refreshLedger);
    source.addEventListener("resync", () => { refresh(null); refreshLedger(); });
    source.onerror = () => {
      setLive("lost", _("Reconnecting…"));
      // EventSource retries by itself unless the server answered with an error; then we do.
      if (source.readyState === EventSource.CLOSED) {
        signedOut().then((out) => {
          if (out) { setLive("lost", "Signed out"); location.assign(loginUrl()); return; } // retrying cannot help
          setTimeout(connect, retry);
          retry = Math.min(retry * 2, 30000);
        });
      }
    };
  }
  // EventSource hides the status it was refused with: ask a small API route whether the session is gone
  // (401, or 403 for a visitor who may not read) rather than retrying for ever after a sign-out or expiry.
  async function signedOut() {
    try {
      const answer = await fetch("/api/v1/printers", { headers: { Accept: "application/json" }, cache: "no-store" });
      return answer.status === 401 || answer.status === 403;
    } catch (_) {
      return false; // the server cannot be reached: keep retrying
    }
  }
  const loginUrl = () => "/login?next=" + encodeURIComponent(location.pathname + location.search);
  if (document.querySelector("[data-printer-card], [data-ledger-live]")) connect();
  else live.hidden = true; // a page that does not update live: no "Connecting…" that never ends

  // ----- install prompt and offline support -----------------------------------------------------
  const install = document.getElementById("install");
  let deferred = null;
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault(); // offer it from our own button instead of an unexpected banner
    deferred = event;
    install.hidden = false;
  });
  install.addEventListener("click", async () => {
    if (!deferred) return;
    deferred.prompt();
    await deferred.userChoice.catch(() => null);
    deferred = null;
    install.hidden = true;
  });
  window.addEventListener("appinstalled", () => { install.hidden = true; say(_("Layerwise is installed.")); });

  // The footer's language picker applies a choice at once; its button is for pages without scripts.
  const language = document.querySelector(".language-form select");
  if (language) {
    language.form.querySelector("button").hidden = true;
    language.addEventListener("change", () => language.form.requestSubmit());
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(() => { /* the app works without it */ });
  }
})();
