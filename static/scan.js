// Scanning a Spoolman label: the live camera where the browser gives one (a secure context), a photo
// otherwise (plain http on the LAN: a file input that opens the phone's camera app), decoded here.
// A scan section (templates: partials/scan_section.html) holds the button, the video, the file input,
// the help line and the result. Its button says where a code goes: data-scan-url (a partial, swapped
// into the section's result) or data-scan-go (a page to open with ?code=).
(function () {
  "use strict";
  const _ = window.layerwiseText;
  const liveHelp = _("The live camera needs a secure connection (https:// or localhost), so this button takes a " +
    "photo instead: hold the phone 15–30 cm from the label, in good light. For live scanning: ");
  const setupLink = _("Set up this phone"); // the page that makes https:// work (templates/setup.html)
  const noCode = _("No QR code found in that photo. Take it again closer, with the label's QR code sharp and " +
    "in the middle of the picture, in good light; or search for the spool instead.");
  const decoderProblem = _("The QR decoder could not be loaded. Check the network and try again.");

  function cameraAvailable() {
    return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }
  function parts(button) {
    const section = button.closest(".scan");
    return {
      section,
      help: section.querySelector(".scan-help"),
      box: section.querySelector(".scanner"),
      input: section.querySelector("input[type=file]"),
      result: section.querySelector(".scan-result"),
    };
  }
  function tell(help, text) { help.textContent = text; help.hidden = !text; }
  function tellWithSetup(help, text) {
    const link = document.createElement("a");
    link.href = "/setup?next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = setupLink;
    help.replaceChildren(text, link, ".");
    help.hidden = false;
  }

  /** Says, in every scan section now on the page, that the button takes a photo here. */
  function check(root) {
    if (cameraAvailable()) return;
    for (const help of (root || document).querySelectorAll(".scan .scan-help")) tellWithSetup(help, liveHelp);
  }

  function found(button, text) {
    const { result } = parts(button);
    if (button.dataset.scanGo) {
      window.location.assign(button.dataset.scanGo + "?code=" + encodeURIComponent(text));
    } else {
      htmx.ajax("GET", button.dataset.scanUrl + "?code=" + encodeURIComponent(text), { target: result, swap: "innerHTML" });
    }
  }

  // ----- the decoder ------------------------------------------------------------------------------
  let jsQRLoading = null;
  function loadJsQR() { // the decoder is 250 KB: fetch it only when a scan needs it
    jsQRLoading = jsQRLoading || new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/jsqr-1.4.0.js";
      script.onload = () => resolve(window.jsQR);
      script.onerror = () => { jsQRLoading = null; reject(new Error(decoderProblem)); };
      document.head.appendChild(script);
    });
    return jsQRLoading;
  }
  function qr(jsQR, image) {
    const code = jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
    return code ? code.data : null;
  }

  // ----- live camera --------------------------------------------------------------------------------
  let scan = null; // {stream, timer, button}
  async function liveDecoder() {
    if ("BarcodeDetector" in window) {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return async (video) => { const codes = await detector.detect(video); return codes.length ? codes[0].rawValue : null; };
      }
    }
    const jsQR = await loadJsQR();
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    return async (video) => {
      const scale = Math.min(1, 640 / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      return qr(jsQR, context.getImageData(0, 0, canvas.width, canvas.height));
    };
  }
  async function startCamera(button) {
    const { help, box } = parts(button);
    if (scan) return;
    tell(help, "");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      if (error.name === "NotFoundError") { takePhoto(button); return; } // no camera to stream: a photo may still work
      tell(help, error.name === "NotAllowedError"
        ? _("Camera access was refused. Allow the camera for this site in the browser's settings, then try again.")
        : _("The camera could not be started: %(error)s", { error: error.message }));
      return;
    }
    const video = box.querySelector("video");
    scan = { stream, timer: null, button };
    video.srcObject = stream;
    box.hidden = false;
    button.hidden = true;
    await video.play().catch(() => {});
    let decode;
    try { decode = await liveDecoder(); } catch (error) { stop(); tell(help, error.message); return; }
    const tick = async () => {
      if (!scan) return;
      let text = null;
      if (video.readyState >= 2 && video.videoWidth) {
        try { text = await decode(video); } catch (_) { text = null; }
      }
      if (text && scan) { stop(); found(button, text); }
      else if (scan) scan.timer = setTimeout(tick, 150);
    };
    tick();
  }
  function stop() {
    if (!scan) return;
    clearTimeout(scan.timer);
    for (const track of scan.stream.getTracks()) track.stop();
    const { box } = parts(scan.button);
    box.hidden = true;
    box.querySelector("video").srcObject = null;
    scan.button.hidden = false;
    scan = null;
  }

  // ----- a photo ------------------------------------------------------------------------------------
  function takePhoto(button) {
    const { input } = parts(button);
    input.value = ""; // the same photo again still fires "change"
    input.click();
  }
  async function loadPhoto(file) {
    // createImageBitmap applies the photo's EXIF orientation; an <img> is the fallback for old Safari.
    if ("createImageBitmap" in window) {
      try { return await createImageBitmap(file); } catch (_) { /* not decodable this way: try <img> */ }
    }
    const url = URL.createObjectURL(file);
    try {
      const image = new Image();
      image.src = url;
      await image.decode();
      return image;
    } finally { URL.revokeObjectURL(url); }
  }
  /** Pixels of a part of the photo (sx, sy, sw, sh), scaled to fit `max` px, turned by `turn` radians. */
  function pixels(photo, max, area, turn) {
    const [sx, sy, sw, sh] = area || [0, 0, photo.width, photo.height];
    const scale = Math.min(1, max / Math.max(sw, sh));
    const w = Math.max(1, Math.round(sw * scale)), h = Math.max(1, Math.round(sh * scale));
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#fff";
    context.fillRect(0, 0, w, h);
    if (turn) { context.translate(w / 2, h / 2); context.rotate(turn); context.translate(-w / 2, -h / 2); }
    context.drawImage(photo, sx, sy, sw, sh, 0, 0, w, h);
    return context.getImageData(0, 0, w, h);
  }
  /** Grey levels stretched between the 0.5th and 99.5th percentile over 0–255: a dim, flat photo
   *  otherwise falls under jsQR's minimum contrast per block. Grey out (a colour channel clipped on its
   *  own would draw false edges). Works in place. */
  function stretch(image) {
    const data = image.data, count = data.length / 4, histogram = new Uint32Array(256);
    const grey = new Uint8Array(count);
    for (let i = 0, p = 0; i < data.length; i += 4, p++) {
      grey[p] = (data[i] * 77 + data[i + 1] * 150 + data[i + 2] * 29) >> 8;
      histogram[grey[p]]++;
    }
    let low = 0, high = 255, seen = 0;
    while (low < 255 && (seen += histogram[low]) < count * 0.005) low++;
    seen = 0;
    while (high > 0 && (seen += histogram[high]) < count * 0.005) high--;
    if (high - low < 8) return image;
    const table = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v++) table[v] = ((v - low) * 255) / (high - low);
    for (let i = 0, p = 0; i < data.length; i += 4, p++) data[i] = data[i + 1] = data[i + 2] = table[grey[p]];
    return image;
  }
  /** The passes over a photo, cheapest first: the whole picture downscaled (a phone photo is 12 MP),
   *  with stretched contrast, larger, turned, then overlapping tiles at up to full size (a label far
   *  away). Measured on tests/fixtures/label-photos: each decodes in one pass of these. */
  function* passes(photo) {
    const big = Math.max(photo.width, photo.height);
    yield ["whole 1024", () => pixels(photo, 1024)];
    // Smaller first: downscaling averages out the grain of a dim photo, which stretching would amplify.
    yield ["whole 640, contrast", () => stretch(pixels(photo, 640))];
    if (big > 1400) yield ["whole 2048", () => pixels(photo, 2048)];
    yield ["whole 1024, contrast", () => stretch(pixels(photo, 1024))];
    if (big < 400) yield ["whole ×2", () => pixels(photo, big * 2)];
    yield ["turned 30°", () => pixels(photo, 1024, null, Math.PI / 6)];
    // Tiles of half the photo's shorter side, overlapping by half: a label anywhere lies wholly in one.
    // Up to 1536 px each, so a 12 MP photo's tiles are not scaled down at all.
    const side = Math.min(photo.width, photo.height) / 2;
    if (side >= 300) {
      for (const y of starts(photo.height, side)) {
        for (const x of starts(photo.width, side)) {
          yield [`tile ${x},${y}`, () => pixels(photo, 1536, [x, y, side, side])];
        }
      }
    }
  }
  /** Where tiles of `side` start along `length`, overlapping by about half, the last one at the end. */
  function starts(length, side) {
    const count = Math.ceil((length - side) / (side / 2)) + 1;
    return Array.from({ length: count }, (_, i) => Math.round(count > 1 ? (i * (length - side)) / (count - 1) : 0));
  }
  /** The label's code in a photo ({text, pass}), a code that is not a label's, or null when none. */
  async function decodePhoto(file) {
    const jsQR = await loadJsQR();
    const photo = await loadPhoto(file);
    let other = null;
    for (const [name, make] of passes(photo)) {
      const text = qr(jsQR, make());
      if (text && window.LayerwiseLabels.parse(text)) return { text, pass: name };
      if (text && !other) other = { text, pass: name }; // some other QR code: keep looking for the label
      await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint between passes
    }
    return other;
  }
  async function readPhoto(input) {
    const button = input.closest(".scan").querySelector("[data-action=scan]");
    const { help, section } = parts(button);
    const file = input.files && input.files[0];
    if (!file) return;
    tell(help, _("Reading the photo…"));
    button.disabled = true;
    try {
      const code = await decodePhoto(file);
      section.dataset.decodedBy = code ? code.pass : "none";
      if (!code) { tell(help, noCode); return; }
      tell(help, "");
      found(button, code.text);
    } catch (error) {
      tell(help, error.message === decoderProblem ? error.message
        : _("That file could not be read as a picture. Take the photo again, or pick a JPEG or PNG."));
    } finally {
      button.disabled = false;
    }
  }

  // ----- wiring ---------------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    // A notice's Close button outside the dialog (on /scan): take the notice away.
    const close = event.target.closest("[data-action=close]");
    const answer = close && !close.closest("dialog") && close.closest("#scan-answer");
    if (answer) answer.replaceChildren();
    const action = event.target.closest("[data-action=scan], [data-action=stop-scan]");
    if (!action) return;
    if (action.dataset.action === "stop-scan") stop();
    else if (cameraAvailable()) startCamera(action);
    else takePhoto(action);
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches(".scan input[type=file]")) readPhoto(event.target);
  });
  document.body.addEventListener("htmx:afterSwap", (event) => check(event.detail.target));
  check(document);

  // Spoolman's label links (web+spoolman:s-3) open Layerwise's /scan page: browsers allow it only in a
  // secure context. The installed app registers by itself, once; a page offers a button.
  function registerHandler() {
    navigator.registerProtocolHandler("web+spoolman", "/scan?code=%s");
  }
  const offer = document.getElementById("register-handler");
  if (window.isSecureContext && "registerProtocolHandler" in navigator) {
    if (offer) {
      offer.hidden = false;
      offer.addEventListener("click", () => {
        try { registerHandler(); offer.textContent = _("Asked the browser: confirm there if it asks."); }
        catch (error) { offer.textContent = _("The browser refused: %(error)s", { error: error.message }); }
        offer.disabled = true;
      });
    }
    try {
      if (window.matchMedia("(display-mode: standalone)").matches && !localStorage.getItem("layerwise-handler")) {
        registerHandler();
        localStorage.setItem("layerwise-handler", "1");
      }
    } catch (_) { /* storage or the handler refused: the button still offers it */ }
  }

  window.LayerwiseScan = { stop, check, decodePhoto };
})();
