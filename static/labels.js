// What a scanned QR code means: the browser's copy of server/web/labels.py's parse_label, tested with
// the same table of cases (tests/web/label_codes.json). The photo decoder uses it to keep looking when
// a photo holds some other QR code before the label's.
(function () {
  "use strict";
  // [0-9], not \d, and Python's whitespace: both sides must agree on every input.
  const SCHEME = /^web\+spoolman:([sf])-0*([0-9]{1,9})$/i;
  const URL = /^https?:\/\/[^\s?#]+\/(spool|filament)\/show\/0*([0-9]{1,9})\/?(?:[?#]\S*)?$/i;

  /** {kind: "spool"|"filament", id} for a Spoolman label's code, null for anything else. */
  function parse(text) {
    const code = String(text).trim();
    let match = SCHEME.exec(code), kind;
    if (match) kind = match[1].toLowerCase() === "s" ? "spool" : "filament";
    else if ((match = URL.exec(code))) kind = match[1].toLowerCase();
    else return null;
    const id = Number(match[2]);
    return id === 0 ? null : { kind, id }; // Spoolman ids start at 1
  }
  window.LayerwiseLabels = { parse };
})();
