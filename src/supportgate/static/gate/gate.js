/*
 * supportgate gate.js: detect an ad blocker, ask the gate for one decision, apply it (docs/gate.md).
 * The gate substitutes SITE and GATE when it serves this file and strips comments and indentation:
 * keep comments on lines of their own and use no template literals.
 * Under node (no document) it only exports its pure functions, for tests/js.
 */
(function (w, d) {
  "use strict";
  var SITE = "__SG_SITE__";
  var GATE = "__SG_GATE__";
  var A = "data-sg-";

  function classify(s) {
    if (s.control !== "loaded") return "inconclusive";
    if (s.network === "blocked" || s.cosmetic === "hidden") return "blocked";
    return s.network === "loaded" && s.cosmetic === "visible" ? "clear" : "inconclusive";
  }

  // decide takes ll or ll-CC; anything else is left out rather than risk a 400.
  function locale(tag) {
    var p = String(tag || "").split(/[-_]/);
    if (!/^[a-z]{2}$/i.test(p[0])) return null;
    return p[0].toLowerCase() + (/^[a-z]{2}$/i.test(p[1]) ? "-" + p[1].toUpperCase() : "");
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
  if (!d) {
    module.exports = pure;
    return;
  }
  if (w.supportgate) return;

  var me = d.currentScript;
  var attr = function (n) { return me && me.getAttribute(n); };
  var server = attr("data-mode") === "server";
  var html = d.documentElement;
  var ui = null;
  var busy = null;
  var policy;
  var started;
  var api = w.supportgate = {
    detection: null,
    decision: null,
    ready: new Promise(function (r) { started = r; }),
    recheck: function () { return check(false); }
  };

  function rid(n) {
    var a = crypto.getRandomValues(new Uint8Array(n)), s = "";
    for (var i = 0; i < n; i++) s += (a[i] + 256).toString(16).slice(1);
    return s;
  }

  function later(ms, v) {
    return new Promise(function (r) { setTimeout(r, ms, v); });
  }

  // A probe is judged by the global it sets, not by onload: blockers often redirect to a stub.
  function probe(path, flag, bad) {
    return new Promise(function (r) {
      var s = d.createElement("script");
      w[flag] = 0;
      s.async = true;
      s.src = trusted("createScriptURL", GATE + "/v1/sites/" + SITE + path + "?r=" + rid(4));
      s.onload = s.onerror = function () {
        s.remove();
        r(w[flag] === true ? "loaded" : bad);
      };
      html.appendChild(s);
    });
  }

  function detect() {
    var timeout = later(3000, "timeout");
    var bait = d.createElement("div");
    bait.className = "adsbox ad-banner";
    bait.setAttribute("aria-hidden", "true");
    bait.textContent = "\u00a0";
    bait.style.cssText = "position:absolute;left:-9999px;top:0;width:2px;height:2px";
    d.body.appendChild(bait);
    return Promise.all([
      Promise.race([probe("/probe.js", "supportgateControl", "failed"), timeout]),
      Promise.race([probe("/ads/show.js", "supportgateBait", "blocked"), timeout]),
      later(300)
    ]).then(function (r) {
      var c = getComputedStyle(bait);
      var hidden = !bait.offsetWidth || !bait.offsetHeight || c.display === "none" || c.visibility === "hidden";
      bait.remove();
      var s = {control: r[0], network: r[1], cosmetic: hidden ? "hidden" : "visible"};
      var det = api.detection = {result: classify(s), signals: s};
      d.cookie = "sg_adblock=" + det.result + "; Path=/; Max-Age=1800; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
      return det;
    });
  }

  // Only our own window on our own origin, echoing our nonce, can be the extension's content script.
  function ask(type, want) {
    return new Promise(function (r) {
      var nonce = rid(16);
      var t = setTimeout(done, 300, null);
      function on(e) {
        var m = e.data;
        if (e.source === w && e.origin === location.origin && m && m.type === want && m.nonce === nonce) done(m);
      }
      function done(m) {
        clearTimeout(t);
        w.removeEventListener("message", on);
        r(m);
      }
      w.addEventListener("message", on);
      try {
        w.postMessage({type: type, site: SITE, nonce: nonce}, location.origin);
      } catch (e) {
        done(null);
      }
    });
  }

  function visitor() {
    try {
      var v = localStorage.getItem("sg_visitor");
      if (!/^[A-Za-z0-9_-]{8,64}$/.test(v)) localStorage.setItem("sg_visitor", v = rid(16));
      return v;
    } catch (e) {
      return null;
    }
  }

  function post(path, body) {
    return fetch(GATE + path, {
      method: "POST",
      credentials: "omit",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)
    });
  }

  function decide(det, hello) {
    var b = {site: SITE, path: location.pathname.slice(0, 2000), adblock: det.result};
    var pass = hello && hello.pass;
    var v = visitor();
    var l = locale(html.lang || navigator.language);
    if (typeof pass === "string" && pass && pass.length <= 4096) b.pass = pass;
    if (v) b.visitor = v;
    if (l) b.lang = l;
    return post("/v1/decide", b).then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }

  function say(box, where, key) {
    var el = box.querySelector("[" + A + where + "]");
    if (el) el.textContent = box.getAttribute(A + "msg-" + key) || "";
  }

  // Pages that enforce Trusted Types must allow the policy name "supportgate".
  function trusted(kind, value) {
    try {
      policy = policy || w.trustedTypes.createPolicy("supportgate", {createHTML: String, createScriptURL: String});
      return policy[kind](value);
    } catch (e) {
      return value;
    }
  }

  function show(markup, kind) {
    var host = d.createElement("supportgate-ui");
    var root = host.attachShadow({mode: "closed"});
    var t = d.createElement("template");
    var css = "";
    t.innerHTML = trusted("createHTML", markup);
    t.content.querySelectorAll("style").forEach(function (s) {
      css += s.textContent;
      s.remove();
    });
    // A constructed sheet is CSSOM, so a page's style-src without 'unsafe-inline' still allows it.
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
    root.appendChild(t.content);
    var box = root.querySelector("[" + A + "root]");
    var dialog = box && box.querySelector("[role=dialog]");
    if (!dialog) return;
    close();
    ui = {host: host, root: root, box: box, kind: kind, saved: [], focus: d.activeElement};
    wire(root, box);
    d.body.appendChild(host);
    if (kind === "nag") {
      box.classList.add("sg-nag");
      dialog.setAttribute("aria-modal", "false");
      return;
    }
    [].forEach.call(d.body.children, function (el) {
      if (el === host) return;
      ui.saved.push([el, el.inert, el.getAttribute("aria-hidden")]);
      el.inert = true;
      el.setAttribute("aria-hidden", "true");
    });
    ui.overflow = html.style.overflow;
    html.style.overflow = "hidden";
    (box.querySelector("[tabindex='-1']") || dialog).focus();
  }

  function close(announce) {
    var u = ui;
    if (!u) return;
    ui = null;
    var inside = u.root.activeElement;
    u.saved.forEach(function (s) {
      s[0].inert = s[1];
      if (s[2] === null) s[0].removeAttribute("aria-hidden");
      else s[0].setAttribute("aria-hidden", s[2]);
    });
    if (u.kind === "wall") html.style.overflow = u.overflow;
    if (announce) {
      // Keep the live region a moment after the dialog goes, so the news is read out.
      u.box.firstElementChild.remove();
      say(u.box, "announce", "unlocked");
      setTimeout(function () { u.host.remove(); }, 5000);
    } else {
      u.host.remove();
    }
    if ((u.kind === "wall" || inside) && u.focus && u.focus.focus) u.focus.focus();
  }

  function apply(dec) {
    api.decision = dec;
    var kind = dec && dec.decision;
    if (kind !== "wall" && kind !== "nag") {
      close(true);
      return dec;
    }
    if (ui && ui.kind === kind) return dec;
    var url = fragmentUrl(dec.interstitial_url);
    if (!url) return dec;
    return fetch(url, {credentials: "omit"}).then(function (r) {
      if (!r.ok) throw Error(r.status);
      return r.text();
    }).then(function (markup) {
      show(markup, kind);
      return dec;
    }).catch(function () { return dec; });
  }

  function check(first) {
    if (busy) return busy;
    busy = Promise.all([detect(), server ? null : ask("supportgate:hello", "supportgate:pass")]).then(function (r) {
      if (!server) return decide(r[0], r[1]).then(apply);
      var result = r[0].result;
      if (reloads(result, attr("data-assumed")) && (!first || once(result))) location.reload();
      return null;
    }).catch(function () { return null; }).then(function (dec) {
      busy = null;
      return dec;
    });
    return busy;
  }

  // One automatic reload per result and tab: a server that ignores the cookie cannot loop us.
  function once(result) {
    try {
      if (sessionStorage.getItem("sg_reload") === result) return false;
      sessionStorage.setItem("sg_reload", result);
      return true;
    } catch (e) {
      return false;
    }
  }

  function report() {
    busy = detect().then(function (det) {
      return post("/v1/sites/" + SITE + "/reports", {
        signals: det.signals,
        user_agent: navigator.userAgent.slice(0, 512),
        path: location.pathname.slice(0, 2000)
      });
    }).then(function (r) { return r.ok ? "thanks" : "error"; }).catch(function () { return "error"; });
    return busy.then(function (k) {
      busy = null;
      return k;
    });
  }

  function act(k, box) {
    if (k === "close") return close();
    if (k === "signin") {
      ask("supportgate:open-signin", "supportgate:signin-opened").then(function (m) {
        say(box, "status", m ? "signin" : "noext");
      });
      return;
    }
    if (busy) return;
    say(box, "status", "checking");
    (k === "report" ? report() : check(false).then(function () {
      var still = server ? api.detection && api.detection.result === "blocked" : ui && ui.box === box;
      return still && "blocked";
    })).then(function (key) {
      if (key) say(box, "status", key);
    });
  }

  function wire(root, box) {
    root.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("[" + A + "action]");
      var k = b && b.getAttribute(A + "action");
      if (k && k !== "support") act(k, box);
    });
  }

  function key(e) {
    if (!ui) return;
    if (e.key === "Escape" && ui.kind === "nag") close();
    if (e.key !== "Tab" || ui.kind !== "wall") return;
    var all = [].filter.call(ui.box.querySelectorAll("a[href],button"), function (el) {
      return el.getClientRects().length > 0;
    });
    var cur = ui.root.activeElement;
    var edge = e.shiftKey ? all[0] : all[all.length - 1];
    if (cur === edge || !cur || (e.shiftKey && all.indexOf(cur) < 0)) {
      e.preventDefault();
      (e.shiftKey ? all[all.length - 1] : all[0]).focus();
    }
  }

  function start() {
    var box = server && d.querySelector("[" + A + "root]");
    if (box) wire(d, box);
    d.addEventListener("keydown", key);
    check(true).then(started);
  }

  if (d.readyState === "complete") start();
  else w.addEventListener("load", start);
})(typeof window === "object" ? window : null, typeof document === "object" ? document : null);
