/*
 * supportgate gate.js: detect an ad blocker, ask the gate for one decision, apply it (docs/gate.md).
 * The gate substitutes SITE and GATE when it serves this file and strips comments and indentation:
 * keep comments on lines of their own and use no template literals.
 * Under node (no document) it only exports its pure functions, for tests/js.
 */
(function (window, document) {
  "use strict";
  var SITE = "__SG_SITE__";
  var GATE = "__SG_GATE__";
  var ATTRIBUTE_PREFIX = "data-sg-";
  // How long the gate may take to decide or to send the wall before the page goes on without it.
  var GATE_TIMEOUT_MS = 1500;

  function classify(signals) {
    if (signals.control !== "loaded") return "inconclusive";
    if (signals.network === "blocked" || signals.cosmetic === "hidden") return "blocked";
    return signals.network === "loaded" && signals.cosmetic === "visible" ? "clear" : "inconclusive";
  }

  // decide takes ll or ll-CC; anything else is left out rather than risk a 400.
  function locale(tag) {
    var parts = String(tag || "").split(/[-_]/);
    if (!/^[a-z]{2}$/i.test(parts[0])) return null;
    return parts[0].toLowerCase() + (/^[a-z]{2}$/i.test(parts[1]) ? "-" + parts[1].toUpperCase() : "");
  }

  // The server rendered with the cookie's last value: a new result may change its answer (and reason).
  function reloads(result, assumed) {
    return result !== assumed;
  }

  // The dialog's markup comes from the gate alone.
  function fragmentUrl(url) {
    if (typeof url !== "string" || url.indexOf(GATE + "/") !== 0) return null;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "fragment=1";
  }

  var pure = {classify: classify, locale: locale, reloads: reloads, fragmentUrl: fragmentUrl};
  if (!document) {
    module.exports = pure;
    return;
  }
  if (window.supportgate) return;

  var ownScript = document.currentScript;
  var serverMode = scriptAttribute("data-mode") === "server";
  var html = document.documentElement;
  var interstitial = null;
  var running = null;
  var trustedTypesPolicy;
  var resolveReady;
  var supportgate = window.supportgate = {
    detection: null,
    decision: null,
    ready: new Promise(function (resolve) { resolveReady = resolve; }),
    recheck: function () { return check(false); }
  };

  function scriptAttribute(name) {
    return ownScript && ownScript.getAttribute(name);
  }

  function randomHex(bytes) {
    var values = crypto.getRandomValues(new Uint8Array(bytes)), hex = "";
    for (var i = 0; i < bytes; i++) hex += (values[i] + 256).toString(16).slice(1);
    return hex;
  }

  function after(ms, value) {
    return new Promise(function (resolve) { setTimeout(resolve, ms, value); });
  }

  // A probe is judged by the global it sets, not by onload: blockers often redirect to a stub.
  function probe(path, loadedFlag, failure) {
    return new Promise(function (resolve) {
      var script = document.createElement("script");
      window[loadedFlag] = 0;
      script.async = true;
      script.src = trusted("createScriptURL", GATE + "/v1/sites/" + SITE + path + "?r=" + randomHex(4));
      script.onload = script.onerror = function () {
        script.remove();
        resolve(window[loadedFlag] === true ? "loaded" : failure);
      };
      html.appendChild(script);
    });
  }

  function detect() {
    var timeout = after(3000, "timeout");
    var cosmeticBait = document.createElement("div");
    cosmeticBait.className = "adsbox ad-banner";
    cosmeticBait.setAttribute("aria-hidden", "true");
    cosmeticBait.textContent = "\u00a0";
    cosmeticBait.style.cssText = "position:absolute;left:-9999px;top:0;width:2px;height:2px";
    document.body.appendChild(cosmeticBait);
    return Promise.all([
      Promise.race([probe("/probe.js", "supportgateControl", "failed"), timeout]),
      Promise.race([probe("/ads/show.js", "supportgateBait", "blocked"), timeout]),
      after(300)
    ]).then(function (probes) {
      var style = getComputedStyle(cosmeticBait);
      var hidden = !cosmeticBait.offsetWidth || !cosmeticBait.offsetHeight ||
        style.display === "none" || style.visibility === "hidden";
      cosmeticBait.remove();
      var signals = {control: probes[0], network: probes[1], cosmetic: hidden ? "hidden" : "visible"};
      var detection = supportgate.detection = {result: classify(signals), signals: signals};
      document.cookie = "sg_adblock=" + detection.result + "; Path=/; Max-Age=1800; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
      return detection;
    });
  }

  // Only our own window on our own origin, echoing our nonce, can be the extension's content script.
  function askExtension(type, answerType) {
    return new Promise(function (resolve) {
      var nonce = randomHex(16);
      var timer = setTimeout(finish, 300, null);
      function onMessage(event) {
        var answer = event.data;
        if (event.source === window && event.origin === location.origin &&
          answer && answer.type === answerType && answer.nonce === nonce) finish(answer);
      }
      function finish(answer) {
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        resolve(answer);
      }
      window.addEventListener("message", onMessage);
      try {
        window.postMessage({type: type, site: SITE, nonce: nonce}, location.origin);
      } catch (error) {
        finish(null);
      }
    });
  }

  function visitorId() {
    try {
      var visitor = localStorage.getItem("sg_visitor");
      if (!/^[A-Za-z0-9_-]{8,64}$/.test(visitor)) localStorage.setItem("sg_visitor", visitor = randomHex(16));
      return visitor;
    } catch (error) {
      return null;
    }
  }

  // A gate that has not answered in time is given up on: the page shows as if it had said allow.
  function fetchWithin(url, options, read) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, GATE_TIMEOUT_MS);
    options.signal = controller.signal;
    return fetch(url, options).then(read).finally(function () { clearTimeout(timer); });
  }

  function post(path, body, read, keepalive) {
    return fetchWithin(GATE + "/v1/" + path, {
      method: "POST",
      credentials: "omit",
      keepalive: keepalive,
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)
    }, read);
  }

  // A funnel event is counted or lost: never an error for the reader, never a wait. keepalive: one
  // sent as the reader follows a link still reaches the gate.
  function track(event) {
    post("sites/" + SITE + "/events", {event: event}, String, true).catch(String);
  }

  function decide(detection, passAnswer) {
    var body = {site: SITE, path: location.pathname.slice(0, 2000), adblock: detection.result};
    var pass = passAnswer && passAnswer.pass;
    var visitor = visitorId();
    var lang = locale(html.lang || navigator.language);
    if (typeof pass === "string" && pass && pass.length <= 4096) body.pass = pass;
    if (visitor) body.visitor = visitor;
    if (lang) body.lang = lang;
    return post("decide", body, function (response) {
      return response.ok ? response.json() : null;
    }).catch(function () { return null; });
  }

  function say(root, slot, message) {
    var target = root.querySelector("[" + ATTRIBUTE_PREFIX + slot + "]");
    if (target) target.textContent = root.getAttribute(ATTRIBUTE_PREFIX + "msg-" + message) || "";
  }

  // Pages that enforce Trusted Types must allow the policy name "supportgate".
  function trusted(factory, value) {
    try {
      trustedTypesPolicy = trustedTypesPolicy ||
        window.trustedTypes.createPolicy("supportgate", {createHTML: String, createScriptURL: String});
      return trustedTypesPolicy[factory](value);
    } catch (error) {
      return value;
    }
  }

  function showInterstitial(markup, kind) {
    var host = document.createElement("supportgate-ui");
    var shadow = host.attachShadow({mode: "closed"});
    var template = document.createElement("template");
    var css = "";
    template.innerHTML = trusted("createHTML", markup);
    template.content.querySelectorAll("style").forEach(function (style) {
      css += style.textContent;
      style.remove();
    });
    // A constructed sheet is CSSOM, so a page's style-src without 'unsafe-inline' still allows it.
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    shadow.adoptedStyleSheets = [sheet];
    shadow.appendChild(template.content);
    var root = shadow.querySelector("[" + ATTRIBUTE_PREFIX + "root]");
    var dialog = root && root.querySelector("[role=dialog]");
    if (!dialog) return;
    closeInterstitial();
    interstitial = {host: host, shadow: shadow, root: root, kind: kind, inerted: [], focusBefore: document.activeElement};
    wireActions(shadow, root);
    document.body.appendChild(host);
    if (kind === "nag") {
      root.classList.add("sg-nag");
      dialog.setAttribute("aria-modal", "false");
      return;
    }
    [].forEach.call(document.body.children, function (element) {
      if (element === host) return;
      interstitial.inerted.push({element: element, inert: element.inert, ariaHidden: element.getAttribute("aria-hidden")});
      element.inert = true;
      element.setAttribute("aria-hidden", "true");
    });
    interstitial.overflow = html.style.overflow;
    html.style.overflow = "hidden";
    (root.querySelector("[tabindex='-1']") || dialog).focus();
  }

  function closeInterstitial(announceUnlock) {
    var closing = interstitial;
    if (!closing) return;
    interstitial = null;
    var focusInside = closing.shadow.activeElement;
    closing.inerted.forEach(function (saved) {
      saved.element.inert = saved.inert;
      if (saved.ariaHidden === null) saved.element.removeAttribute("aria-hidden");
      else saved.element.setAttribute("aria-hidden", saved.ariaHidden);
    });
    if (closing.kind === "wall") html.style.overflow = closing.overflow;
    if (announceUnlock) {
      // Keep the live region a moment after the dialog goes, so the news is read out.
      closing.root.firstElementChild.remove();
      say(closing.root, "announce", "unlocked");
      setTimeout(function () { closing.host.remove(); }, 5000);
    } else {
      closing.host.remove();
    }
    var focusBefore = closing.focusBefore;
    if ((closing.kind === "wall" || focusInside) && focusBefore && focusBefore.focus) focusBefore.focus();
  }

  function apply(decision) {
    supportgate.decision = decision;
    var kind = decision && decision.decision;
    if (kind !== "wall" && kind !== "nag") {
      closeInterstitial(true);
      return decision;
    }
    if (interstitial && interstitial.kind === kind) return decision;
    var url = fragmentUrl(decision.interstitial_url);
    if (!url) return decision;
    return fetchWithin(url, {credentials: "omit"}, function (response) {
      if (!response.ok) throw Error(response.status);
      return response.text();
    }).then(function (markup) {
      showInterstitial(markup, kind);
      return decision;
    }).catch(function () { return decision; });
  }

  function check(automatic) {
    if (running) return running;
    running = Promise.all([
      detect(),
      serverMode ? null : askExtension("supportgate:hello", "supportgate:pass")
    ]).then(function (found) {
      if (!serverMode) return decide(found[0], found[1]).then(apply);
      var result = found[0].result;
      if (reloads(result, scriptAttribute("data-assumed")) && (!automatic || firstReloadFor(result))) location.reload();
      return null;
    }).catch(function () { return null; }).then(function (decision) {
      running = null;
      return decision;
    });
    return running;
  }

  // One automatic reload per result and tab: a server that ignores the cookie cannot loop us.
  function firstReloadFor(result) {
    try {
      if (sessionStorage.getItem("sg_reload") === result) return false;
      sessionStorage.setItem("sg_reload", result);
      return true;
    } catch (error) {
      return false;
    }
  }

  function reportFalsePositive() {
    running = detect().then(function (detection) {
      return post("sites/" + SITE + "/reports", {
        signals: detection.signals,
        user_agent: navigator.userAgent.slice(0, 512),
        path: location.pathname.slice(0, 2000)
      }, function (response) {
        return response.ok ? "thanks" : "error";
      });
    }).catch(function () { return "error"; });
    return running.then(function (message) {
      running = null;
      return message;
    });
  }

  function dismiss() {
    if (interstitial && interstitial.kind === "nag") track("nag_dismissed");
    closeInterstitial();
  }

  function act(action, root) {
    if (action === "close") return dismiss();
    if (action === "support") return track("support_click");
    if (action === "signin") {
      track("signin_click");
      askExtension("supportgate:open-signin", "supportgate:signin-opened").then(function (answer) {
        say(root, "status", answer ? "signin" : "noext");
        // The install page's link, in the wall's markup, is for readers no extension answered.
        var install = root.querySelector("[" + ATTRIBUTE_PREFIX + "install]");
        if (install) install.hidden = Boolean(answer);
      });
      return;
    }
    if (running) return;
    say(root, "status", "checking");
    if (action === "recheck") track("recheck");
    (action === "report" ? reportFalsePositive() : check(false).then(function () {
      var result = supportgate.detection && supportgate.detection.result;
      var stillBlocked = serverMode ? result === "blocked" : interstitial && interstitial.root === root;
      // The wall went because detection now agrees: the reader allowlisted the site.
      if (!stillBlocked && result === "clear") track("allowlisted");
      return stillBlocked && "blocked";
    })).then(function (message) {
      if (message) say(root, "status", message);
    });
  }

  function wireActions(scope, root) {
    scope.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("[" + ATTRIBUTE_PREFIX + "action]");
      var action = button && button.getAttribute(ATTRIBUTE_PREFIX + "action");
      if (action) act(action, root);
    });
  }

  function onKeydown(event) {
    if (!interstitial) return;
    if (event.key === "Escape" && interstitial.kind === "nag") dismiss();
    if (event.key !== "Tab" || interstitial.kind !== "wall") return;
    var focusable = [].filter.call(interstitial.root.querySelectorAll("a[href],button"), function (element) {
      return element.getClientRects().length > 0;
    });
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    var focused = interstitial.shadow.activeElement;
    if (focused === (event.shiftKey ? first : last) || !focused || (event.shiftKey && focusable.indexOf(focused) < 0)) {
      event.preventDefault();
      (event.shiftKey ? last : first).focus();
    }
  }

  function start() {
    var serverWall = serverMode && document.querySelector("[" + ATTRIBUTE_PREFIX + "root]");
    if (serverWall) wireActions(document, serverWall);
    document.addEventListener("keydown", onKeydown);
    check(true).then(resolveReady);
  }

  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})(typeof window === "object" ? window : null, typeof document === "object" ? document : null);
