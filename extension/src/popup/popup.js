/**
 * The popup: the current site's status, sign-in, the allowed sites and the ledger.
 *
 * It also works as a page in a tab (`popup.html?tab=<id>`), which is how the extension opens
 * the sign-in where the browser will not open the popup for it.
 */

import * as api from "../lib/api.js";
import { hostPattern, originOf, parseGateMeta } from "../lib/origins.js";
import { formatDate, h, localise, send, t } from "../lib/ui.js";

const DETECTION = new Set(["blocked", "clear", "inconclusive"]);

/** The page in the current tab: `{origin, advert, detection}`, or null when it can't be read. */
let page = null;
/** The service worker's last status answer. */
let view = null;
/** The sign-in form's step: `email`, `code`, `activation`, or `devices` (over the device limit). */
let step = { name: "email", email: "", pending: null, devices: null };

const $ = (id) => document.getElementById(id);

function say(text, { error = false } = {}) {
  const message = $("message");
  message.textContent = text;
  message.classList.toggle("error", error);
}

function sayError(answer) {
  say(answer.error?.message || t("errorGeneric"), { error: true });
}

// The two functions below run inside the tab, not here: they are sent to the page and must not
// use anything from this module.
function readAdvert() {
  const meta = document.querySelector('meta[name="supportgate"]');
  return { url: location.href, meta: meta ? meta.getAttribute("content") : null };
}

function readDetection() {
  const found = window.supportgate && window.supportgate.detection;
  return found && typeof found.result === "string" ? found.result : null;
}

async function readPage() {
  const param = new URLSearchParams(location.search).get("tab");
  const tabId = param === null ? (await api.tabs.active())?.id : Number(param);
  if (!Number.isInteger(tabId)) return null;
  try {
    // The isolated world: the page's scripts cannot change what it sees of the DOM API.
    const seen = await api.runInTab(tabId, readAdvert);
    const origin = originOf(seen?.url ?? "");
    if (origin === null) return null;
    const detection = await api.runInTab(tabId, readDetection, "MAIN").catch(() => null);
    return {
      origin,
      advert: parseGateMeta(seen.meta),
      detection: DETECTION.has(detection) ? detection : null,
    };
  } catch {
    return null;
  }
}

function render() {
  renderSite();
  renderAccount();
  renderSites();
  renderLedger();
}

function renderSite() {
  const body = $("site-body");
  body.replaceChildren(...siteContent());
}

function siteContent() {
  if (page === null) return [h("p", {}, t("siteUnreadable"))];
  const host = new URL(page.origin).host;
  if (page.advert === null) return [h("p", {}, t("siteNoGate", host))];
  if (page.advert.gate !== view.gate) {
    return [h("p", {}, t("siteOtherGate", host, page.advert.gate, view.gate))];
  }
  const allowed = view.sites.find((entry) => entry.origin === page.origin);
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("siteUses")),
    h("dd", {}, t("yes")),
    h("dt", {}, t("siteAdblock")),
    h("dd", { id: "site-adblock" }, t(`detection_${page.detection ?? "unknown"}`)),
    h("dt", {}, t("siteStatus")),
    h("dd", { id: "site-status" }, siteStatusText(allowed)),
  );
  const parts = [h("p", { class: "site-name" }, host), facts];
  if (allowed) {
    const remove = () => removeSite(page.origin);
    parts.push(h("button", { type: "button", id: "site-remove", class: "quiet", onclick: remove }, t("siteRemove")));
  } else {
    parts.push(h("button", { type: "button", id: "site-allow", onclick: allowCurrentSite }, t("siteAllow", host)));
  }
  return parts;
}

function siteStatusText(allowed) {
  if (!allowed) return t("statusNotShared");
  if (!view.signedIn) return t("statusSignedOut");
  if (allowed.passExpiresAt !== null) return t("statusShared");
  if (allowed.failure) return t("statusFailure", allowed.failure.message);
  return t("statusWaiting");
}

function allowCurrentSite() {
  const request = { origin: page.origin, site: page.advert.site, gate: page.advert.gate };
  // Ask for the permission first, while the click still counts as the reader's gesture. The
  // worker is told of the wish too, in case the prompt closes this popup before it answers.
  const granted = api.permissions.request([hostPattern(page.origin)]);
  send({ type: "intend-allow", ...request });
  granted.then(
    async (ok) => {
      if (!ok) {
        say(t("sitePermissionRefused"), { error: true });
        return;
      }
      await apply(send({ type: "allow-site", ...request }), t("siteAllowed", new URL(page.origin).host));
    },
    () => say(t("sitePermissionRefused"), { error: true }),
  );
}

async function removeSite(origin) {
  await apply(send({ type: "remove-site", origin }), t("siteRemoved", new URL(origin).host));
}

/** Show the worker's answer: the new status on success, the error otherwise. */
async function apply(pending, success) {
  const answer = await pending;
  if (!answer.ok) {
    sayError(answer);
    if (answer.error.code === "signed-out") await refresh();
    return false;
  }
  view = answer;
  render();
  if (success) say(success);
  return true;
}

function renderAccount() {
  const body = $("account-body");
  if (view.signedIn) {
    body.replaceChildren(...accountContent());
    return;
  }
  const reason = view.notice?.reason.replaceAll("-", "_");
  const notice = reason ? h("p", { class: "notice", id: "signout-notice" }, t(`notice_${reason}`)) : null;
  body.replaceChildren(...[notice, signInForm()].filter(Boolean));
}

function accountContent() {
  const account = view.account ?? {};
  const until = account.expiresAt ? formatDate(account.expiresAt) : t("noEndDate");
  return [
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, t("accountEmail")),
      h("dd", { id: "account-email" }, account.email ?? "—"),
      h("dt", {}, t("accountTier")),
      h("dd", { id: "account-tier" }, account.tierName ?? account.tier ?? "—"),
      h("dt", {}, t("accountUntil")),
      h("dd", { id: "account-until" }, until),
    ),
    h("button", { type: "button", id: "sign-out", class: "quiet", onclick: signOut }, t("signOut")),
  ];
}

async function signOut() {
  await apply(send({ type: "sign-out" }), t("signedOut"));
}

function signInForm() {
  if (step.name === "devices") return devicesForm();
  const form = h("form", { id: "signin-form", novalidate: true });
  if (step.name === "email") {
    form.append(
      h("p", {}, t("signInIntro")),
      field("signin-email", t("emailLabel"), {
        type: "email",
        autocomplete: "email",
        required: true,
        value: step.email,
      }),
      h("button", { type: "submit" }, t("emailSend")),
      h("button", { type: "button", class: "link", onclick: () => go({ name: "activation" }) }, t("useActivation")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const email = $("signin-email").value.trim();
      if (!email.includes("@")) return say(t("emailInvalid"), { error: true });
      withGatePermission(async () => {
        const site = page?.advert?.gate === view.gate ? page.advert.site : undefined;
        const answer = await send({ type: "request-code", email, ...(site ? { site } : {}) });
        if (!answer.ok) return sayError(answer);
        go({ name: "code", email });
        say(t("codeSent", email));
      });
    });
  } else if (step.name === "code") {
    const backToEmail = () => go({ name: "email", email: step.email });
    form.append(
      h("p", {}, t("codeIntro", step.email)),
      field("signin-code", t("codeLabel"), {
        inputmode: "numeric",
        autocomplete: "one-time-code",
        pattern: "[0-9]{6}",
        maxlength: 6,
        required: true,
      }),
      h("button", { type: "submit" }, t("signIn")),
      h("button", { type: "button", class: "link", onclick: backToEmail }, t("back")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = $("signin-code").value.replace(/\s/g, "");
      if (!/^[0-9]{6}$/.test(code)) return say(t("codeInvalid"), { error: true });
      finishSignIn({ type: "verify-code", email: step.email, code });
    });
  } else {
    form.append(
      h("p", {}, t("activationIntro")),
      field("signin-activation", t("activationLabel"), { autocomplete: "off", spellcheck: "false", required: true }),
      h("button", { type: "submit" }, t("activate")),
      h("button", { type: "button", class: "link", onclick: () => go({ name: "email" }) }, t("useEmail")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = $("signin-activation").value.trim();
      if (!/^[0-9A-Za-z\s-]{16,40}$/.test(code)) return say(t("activationInvalid"), { error: true });
      withGatePermission(() => finishSignIn({ type: "activate", code }));
    });
  }
  return form;
}

function field(id, label, attributes) {
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, ...attributes }));
}

function go(next) {
  step = { name: "email", email: "", pending: null, devices: null, ...next };
  say("");
  renderAccount();
  document.querySelector("#account-body input")?.focus();
}

/** Ask for the gate's host permission inside the click, then run `work` if it was granted. */
function withGatePermission(work) {
  api.permissions.request([hostPattern(view.gate)]).then(
    (granted) => (granted ? work() : say(t("gatePermissionRefused", view.gate), { error: true })),
    () => say(t("gatePermissionRefused", view.gate), { error: true }),
  );
}

async function finishSignIn(message) {
  say(t("signingIn"));
  const answer = await send(message);
  if (!answer.ok && answer.error.code === "device-limit") {
    go({ name: "devices", pending: message, devices: answer.error });
    say(t("deviceLimit", answer.error.maxDevices ?? "?"), { error: true });
    return;
  }
  if (!answer.ok) return sayError(answer);
  step = { name: "email", email: "", pending: null, devices: null };
  view = answer;
  render();
  say(t("signedIn"));
}

function devicesForm() {
  const sessions = step.devices.sessions ?? [];
  const form = h(
    "form",
    { id: "devices-form" },
    h(
      "fieldset",
      {},
      h("legend", {}, t("devicesLegend")),
      ...sessions.map((session) =>
        h(
          "div",
          { class: "check" },
          h("input", { type: "checkbox", id: `end-${session.id}`, value: session.id }),
          h(
            "label",
            { for: `end-${session.id}` },
            t("deviceLine", session.device, formatDate(session.last_used_at, { withTime: true })),
          ),
        ),
      ),
    ),
    h("button", { type: "submit" }, t("devicesEnd")),
    h("button", { type: "button", class: "link", onclick: () => go({ name: "email" }) }, t("back")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input:checked")].map((input) => input.value);
    if (chosen.length === 0) return say(t("devicesNone"), { error: true });
    finishSignIn({ ...step.pending, endSessions: chosen });
  });
  return form;
}

function renderSites() {
  $("sites").hidden = view.sites.length === 0;
  $("sites-list").replaceChildren(
    ...view.sites.map((entry) => {
      const host = new URL(entry.origin).host;
      return h(
        "li",
        {},
        h("span", { class: "origin" }, entry.origin),
        h(
          "button",
          {
            type: "button",
            class: "quiet",
            "aria-label": t("siteRemoveNamed", host),
            onclick: () => removeSite(entry.origin),
          },
          t("remove"),
        ),
      );
    }),
  );
}

function renderLedger() {
  $("ledger").hidden = view.ledger.length === 0;
  $("ledger-list").replaceChildren(
    ...view.ledger.map((entry) =>
      h(
        "li",
        {},
        h("span", { class: "origin" }, entry.origin),
        h(
          "time",
          { datetime: new Date(entry.lastAt).toISOString() },
          t("ledgerLast", formatDate(entry.lastAt, { withTime: true })),
        ),
      ),
    ),
  );
}

async function refresh() {
  const answer = await send({ type: "status" });
  if (answer.ok) {
    view = answer;
    render();
  }
}

async function start() {
  localise();
  $("ledger-clear").addEventListener("click", () => apply(send({ type: "clear-ledger" }), t("ledgerCleared")));
  const [first, seen] = await Promise.all([send({ type: "status" }), readPage()]);
  page = seen;
  if (!first.ok) return sayError(first);
  view = first;
  render();
  document.body.dataset.ready = "true";
  if (view.signedIn) {
    // The gate may know more than the worker's copy (a new tier, an end date, ended support).
    const fresh = await send({ type: "refresh-account" });
    if (fresh.ok) {
      view = fresh;
      render();
    } else if (fresh.error.code === "signed-out") {
      await refresh();
    }
  }
}

start();
