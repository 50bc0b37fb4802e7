// "Set up this phone" (templates/setup.html): move on to Layerwise's HTTPS address as soon as this device
// trusts it. An image from the HTTPS origin loads only when its certificate is trusted; until then the
// page shows the steps and looks again whenever the person comes back to it.
(() => {
  "use strict";
  const _ = window.layerwiseText;
  const setup = document.getElementById("phone-setup");
  if (!setup || window.location.protocol === "https:") return;
  const origin = setup.dataset.httpsOrigin;
  const target = setup.dataset.httpsUrl;
  const status = document.getElementById("setup-status");

  const ua = navigator.userAgent;
  const platform = /android/i.test(ua) ? "android"
    : (/iphone|ipad|ipod/i.test(ua) || (/macintosh/i.test(ua) && navigator.maxTouchPoints > 1)) ? "ios" : "desktop";
  const details = setup.querySelector(`.setup-platform[data-platform="${platform}"]`);
  if (details) details.open = true;

  const stay = document.getElementById("stay-http");
  if (stay) stay.addEventListener("click", () => {
    document.cookie = `${stay.dataset.cookie}=1; path=/; max-age=31536000; samesite=lax`;
  });

  let probing = false;
  function probe() {
    if (probing) return;
    probing = true;
    const image = new Image();
    image.onload = () => {
      status.dataset.state = "trusted";
      status.textContent = _("This device trusts Layerwise: opening the secure address…");
      window.location.replace(target);
    };
    image.onerror = () => {
      probing = false;
      status.dataset.state = "untrusted";
      status.textContent = _("This device does not trust Layerwise yet: follow the steps below, then come back here.");
    };
    image.src = `${origin}/static/icons/icon-192.png?probe=${Date.now()}`;
  }
  probe();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) probe(); });
  window.addEventListener("focus", probe);
  setInterval(probe, 5000);
})();
