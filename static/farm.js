// The farm view: filters and search in the page, and live rows without one request per printer per
// update: printers named by the live stream are collected and asked for together, at most once a second.
(function () {
  "use strict";
  const table = document.querySelector("[data-farm]");
  if (!table) return;
  const form = document.querySelector("[data-farm-filters]");
  const search = document.querySelector("[data-farm-search]");
  const none = document.querySelector("[data-farm-none]");
  const live = document.getElementById("live");
  const buttons = Array.from(document.querySelectorAll("[data-farm-filter]"));
  let chosen = (buttons.find((b) => b.getAttribute("aria-pressed") === "true") || buttons[0]).dataset.farmFilter;

  function matches(row, filter, words) {
    if (filter === "attention" && row.dataset.attention !== "true") return false;
    if (filter !== "all" && filter !== "attention" && row.dataset.state !== filter) return false;
    const text = row.dataset.search || "";
    return words.every((word) => text.includes(word));
  }

  // Rows shown by the chosen filter and the search, and each filter's count: one pass over the rows.
  function refilter() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = table.querySelectorAll("[data-farm-row]");
    const counts = new Map(buttons.map((button) => [button.dataset.farmFilter, 0]));
    let visible = 0;
    for (const row of rows) {
      const hide = !matches(row, chosen, words);
      if (row.hidden !== hide) row.hidden = hide;
      if (!hide) visible += 1;
      for (const [filter, count] of counts) if (matches(row, filter, [])) counts.set(filter, count + 1);
    }
    for (const button of buttons) {
      const filter = button.dataset.farmFilter;
      button.setAttribute("aria-pressed", filter === chosen ? "true" : "false");
      const count = button.querySelector("[data-farm-count]");
      const text = String(counts.get(filter));
      if (count && count.textContent !== text) count.textContent = text;
    }
    none.hidden = visible > 0 || rows.length === 0;
  }

  // A person changed the filter or the search: the address keeps it (a reload or a shared link shows the same).
  function apply() {
    refilter();
    const url = new URL(location.href);
    url.searchParams.set("state", chosen);
    if (search.value) url.searchParams.set("q", search.value); else url.searchParams.delete("q");
    if (url.href !== location.href) history.replaceState(null, "", url);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault(); // filtering happens here; the form works without scripts too
    const button = event.submitter && event.submitter.closest("[data-farm-filter]");
    if (button) chosen = button.dataset.farmFilter;
    apply();
  });
  search.addEventListener("input", () => { clearTimeout(apply.timer); apply.timer = setTimeout(apply, 120); });
  // Fresh rows are filtered too. htmx settles each out-of-band row on its own (a farm's answer holds tens of
  // rows): the pass runs once, after the last of them.
  let refilterQueued = false;
  document.body.addEventListener("htmx:afterSettle", () => {
    if (refilterQueued) return;
    refilterQueued = true;
    queueMicrotask(() => { refilterQueued = false; refilter(); });
  });

  // ----- live rows ------------------------------------------------------------------------------
  const pending = new Set();
  let everything = false, timer = null;
  function ask() {
    timer = null;
    const names = everything
      ? Array.from(table.querySelectorAll("[data-farm-row]"), (row) => row.dataset.farmRow)
      : Array.from(pending);
    pending.clear(); everything = false;
    if (!names.length) return;
    const query = new URLSearchParams(names.map((name) => ["printer", name]));
    htmx.ajax("GET", "/farm/rows?" + query, { swap: "none", target: table });
  }
  function note(printer) {
    if (printer) pending.add(printer); else everything = true;
    if (!timer) timer = setTimeout(ask, 1000);
  }
  function setLive(state, text) { live.hidden = false; live.dataset.state = state; live.textContent = text; }

  let seenHello = false, retry = 1000;
  function connect() {
    const source = new EventSource("/events");
    source.addEventListener("hello", () => {
      setLive("live", live.dataset.liveText || "Live");
      if (seenHello) note(null); // back after a restart or a network loss: catch up
      seenHello = true; retry = 1000;
    });
    for (const kind of ["printer", "slot", "job", "ledger"]) {
      source.addEventListener(kind, (event) => {
        let printer = null;
        try { printer = JSON.parse(event.data).printer || null; } catch (_) { /* every row */ }
        note(printer);
      });
    }
    source.addEventListener("resync", () => note(null));
    source.onerror = () => {
      setLive("lost", live.dataset.lostText || "Reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      }
    };
  }
  apply();
  connect();
})();
