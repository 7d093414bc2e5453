/*
 * The handshake with gate.js, registered only on the origins the supporter allowed, top frame
 * only. gate.js posts {type: "supportgate:hello", site, nonce} to its own window; this answers
 * {type: "supportgate:pass", nonce, pass} to the same origin, and never to a frame, another
 * window or another origin. {type: "supportgate:open-signin", nonce} asks the worker to open the
 * sign-in, and is answered {type: "supportgate:signin-opened", nonce} only once the worker says
 * it opened (the popup, or the popup page in a tab).
 *
 * The service worker decides which pass (if any) this origin gets, from the origin the browser
 * reports for this script, never from the page's word.
 *
 * Content scripts cannot be ES modules, so this one file talks to the runtime itself instead of
 * through lib/api.js.
 */
(() => {
  "use strict";
  if (window.top !== window) return;

  const runtime = (globalThis.browser ?? globalThis.chrome).runtime;
  const origin = location.origin;
  /** Ask again when the pass in hand is older than this (a page left open for long). */
  const STALE_MS = 60_000;

  let grant = null;
  let askedAt = 0;

  // Asked at document_start: waking the service worker takes time, and gate.js waits 300 ms.
  // No pass is not kept: the reader may sign in (from the wall's button) and check again.
  function currentGrant() {
    if (grant === null || Date.now() - askedAt > STALE_MS) {
      askedAt = Date.now();
      const asking = runtime.sendMessage({ type: "page-pass" }).then(
        (answer) => (answer && answer.ok && typeof answer.pass === "string" ? answer : null),
        () => null,
      );
      grant = asking;
      asking.then((answer) => {
        if (answer === null && grant === asking) grant = null;
      });
    }
    return grant;
  }
  currentGrant();

  window.addEventListener("message", (event) => {
    if (event.source !== window || event.origin !== origin) return;
    const data = event.data;
    if (data === null || typeof data !== "object") return;
    const { site, nonce } = data;
    if (typeof nonce !== "string" || nonce.length < 8 || nonce.length > 256) return;
    if (data.type === "supportgate:hello" && typeof site === "string") {
      currentGrant().then((answer) => {
        if (answer === null || answer.site !== site) return;
        window.postMessage({ type: "supportgate:pass", nonce, pass: answer.pass }, origin);
      });
    } else if (data.type === "supportgate:open-signin") {
      // gate.js waits 300 ms for the word; the worker is awake already (it answered page-pass).
      runtime.sendMessage({ type: "open-signin" }).then(
        (answer) => {
          if (answer && answer.ok && answer.opened === true) {
            window.postMessage({ type: "supportgate:signin-opened", nonce }, origin);
          }
        },
        () => undefined,
      );
    }
  });
})();
