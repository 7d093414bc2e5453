/**
 * The sign-in card, for the gate the popup offers (see `popup.signInTarget`): "Sign in as a
 * supporter of <site>", then one step at a time: the email, the emailed code or an activation
 * code, and, over the tier's device limit, the sessions to end.
 *
 * The browser is asked for the gate's host permission (and the page's, so the site is allowed in
 * the same gesture) only when the reader submits the first step.
 */

import * as api from "../../lib/api.js";
import { ACTIVATION_CODE, SIX_DIGITS } from "../../lib/messages.js";
import { hostPattern } from "../../lib/origins.js";
import { formatDate, h, say, send, t } from "../../lib/ui.js";
import { $, sayError } from "./shared.js";

/** The first step, and the defaults every other step starts from. */
const FIRST_STEP = Object.freeze({ name: "email", gate: null, email: "", pending: null, devices: null });
/** The sign-in form's step: `email`, `code`, `activation`, or `devices` (over the device limit). */
let step = FIRST_STEP;
/** What the card shows now (target, step, notice), so a redraw with the same keeps the reader's input. */
let drawn = null;

export function renderSignIn(popup) {
  const target = popup.signInTarget();
  const card = $("signin");
  card.hidden = target === null;
  if (target === null) {
    step = FIRST_STEP;
    drawn = null;
    $("signin-body").replaceChildren();
    return;
  }
  if (step.gate !== target.gate) step = { ...FIRST_STEP, gate: target.gate };
  $("signin-heading").textContent = t("signInAs", target.name);
  const notice = popup.membership(target.gate)?.notice?.reason?.replaceAll("-", "_");
  // A new status (site names, the account) must not wipe what the reader is typing.
  const shown = JSON.stringify([target.gate, target.origin, step.name, notice]);
  if (shown === drawn && $("signin-body").firstChild) return;
  drawn = shown;
  const parts = [
    notice ? h("p", { class: "notice", id: "signout-notice" }, t(`notice_${notice}`)) : null,
    signInForm(popup, target),
  ];
  $("signin-body").replaceChildren(...parts.filter(Boolean));
}

/** What the sign-in messages carry besides their own fields: the gate, and the page's site to allow. */
function targetFields(target) {
  return { gate: target.gate, ...(target.origin && target.site ? { origin: target.origin, site: target.site } : {}) };
}

function signInForm(popup, target) {
  if (step.name === "devices") return devicesForm(popup, target);
  const form = h("form", { id: "signin-form", novalidate: true });
  if (step.name === "email") {
    const toActivation = () => go(popup, { name: "activation" });
    form.append(
      h("p", {}, t("signInIntro")),
      field("signin-email", t("emailLabel"), { type: "email", autocomplete: "email", required: true, value: step.email }),
      h("button", { type: "submit" }, t("emailSend")),
      h("button", { type: "button", class: "link", onclick: toActivation }, t("useActivation")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const email = $("signin-email").value.trim();
      if (!email.includes("@")) return say(t("emailInvalid"), { error: true });
      withPermissions(target, async () => {
        const answer = await send({ type: "request-code", gate: target.gate, email, ...(target.site ? { site: target.site } : {}) });
        if (!answer.ok) return sayError(answer);
        go(popup, { name: "code", email });
        say(t("codeSent", email));
      });
    });
  } else if (step.name === "code") {
    const backToEmail = () => go(popup, { name: "email", email: step.email });
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
      if (!SIX_DIGITS.test(code)) return say(t("codeInvalid"), { error: true });
      finishSignIn(popup, { type: "verify-code", ...targetFields(target), email: step.email, code });
    });
  } else {
    form.append(
      h("p", {}, t("activationIntro")),
      field("signin-activation", t("activationLabel"), { autocomplete: "off", spellcheck: "false", required: true }),
      h("button", { type: "submit" }, t("activate")),
      h("button", { type: "button", class: "link", onclick: () => go(popup, { name: "email" }) }, t("useEmail")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = $("signin-activation").value.trim();
      if (!ACTIVATION_CODE.test(code)) return say(t("activationInvalid"), { error: true });
      withPermissions(target, () => finishSignIn(popup, { type: "activate", ...targetFields(target), code }));
    });
  }
  return form;
}

function field(id, label, attributes) {
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, ...attributes }));
}

function go(popup, next) {
  step = { ...FIRST_STEP, gate: step.gate, ...next };
  drawn = null;
  say("");
  popup.renderSignInCard();
  document.querySelector("#signin-body input")?.focus();
}

/**
 * Ask for the gate's host permission, and the page's, inside the click; then run `work` if the
 * browser granted them.
 */
function withPermissions(target, work) {
  const patterns = [...new Set([hostPattern(target.gate), ...(target.origin ? [hostPattern(target.origin)] : [])])];
  const refused = () => say(t("gatePermissionRefused", new URL(target.gate).host), { error: true });
  api.permissions.request(patterns).then((granted) => (granted ? work() : refused()), refused);
}

async function finishSignIn(popup, message) {
  say(t("signingIn"));
  const answer = await send(message);
  if (!answer.ok && answer.error.code === "device-limit") {
    go(popup, { name: "devices", pending: message, devices: answer.error });
    say(t("deviceLimit", answer.error.maxDevices ?? "?"), { error: true });
    return;
  }
  if (!answer.ok) return sayError(answer);
  step = FIRST_STEP;
  drawn = null;
  popup.chosenGate = null;
  popup.show(answer);
  say(t("signedIn"));
}

function devicesForm(popup) {
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
          h("label", { for: `end-${session.id}` }, t("deviceLine", session.device, formatDate(session.last_used_at, { withTime: true }))),
        ),
      ),
    ),
    h("button", { type: "submit" }, t("devicesEnd")),
    h("button", { type: "button", class: "link", onclick: () => go(popup, { name: "email" }) }, t("back")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input:checked")].map((input) => input.value);
    if (chosen.length === 0) return say(t("devicesNone"), { error: true });
    finishSignIn(popup, { ...step.pending, endSessions: chosen });
  });
  return form;
}
