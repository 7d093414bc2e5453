/**
 * The account card while signed out: why the last session ended (when the gate ended it), then
 * the sign-in one step at a time: the email, the emailed code or an activation code, and, over
 * the tier's device limit, the sessions to end.
 */

import * as api from "../../lib/api.js";
import { ACTIVATION_CODE, SIX_DIGITS } from "../../lib/messages.js";
import { hostPattern } from "../../lib/origins.js";
import { formatDate, h, say, send, t } from "../../lib/ui.js";
import { $, sayError } from "./shared.js";

/** The first step, and the defaults every other step starts from. */
const FIRST_STEP = Object.freeze({ name: "email", email: "", pending: null, devices: null });
/** The sign-in form's step: `email`, `code`, `activation`, or `devices` (over the device limit). */
let step = FIRST_STEP;

export function renderSignIn(popup) {
  const body = $("account-body");
  const reason = popup.status.notice?.reason.replaceAll("-", "_");
  const notice = reason ? h("p", { class: "notice", id: "signout-notice" }, t(`notice_${reason}`)) : null;
  body.replaceChildren(...[notice, signInForm(popup)].filter(Boolean));
}

function signInForm(popup) {
  if (step.name === "devices") return devicesForm(popup);
  const form = h("form", { id: "signin-form", novalidate: true });
  if (step.name === "email") {
    const toActivation = () => go(popup, { name: "activation" });
    form.append(
      h("p", {}, t("signInIntro")),
      field("signin-email", t("emailLabel"), {
        type: "email",
        autocomplete: "email",
        required: true,
        value: step.email,
      }),
      h("button", { type: "submit" }, t("emailSend")),
      h("button", { type: "button", class: "link", onclick: toActivation }, t("useActivation")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const email = $("signin-email").value.trim();
      if (!email.includes("@")) return say(t("emailInvalid"), { error: true });
      withGatePermission(popup, async () => {
        const { page, status } = popup;
        const site = page?.advert?.gate === status.gate ? page.advert.site : undefined;
        const answer = await send({ type: "request-code", email, ...(site ? { site } : {}) });
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
      finishSignIn(popup, { type: "verify-code", email: step.email, code });
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
      withGatePermission(popup, () => finishSignIn(popup, { type: "activate", code }));
    });
  }
  return form;
}

function field(id, label, attributes) {
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, ...attributes }));
}

function go(popup, next) {
  step = { ...FIRST_STEP, ...next };
  say("");
  popup.renderAccountCard();
  document.querySelector("#account-body input")?.focus();
}

/** Ask for the gate's host permission inside the click, then run `work` if it was granted. */
function withGatePermission(popup, work) {
  const refused = () => say(t("gatePermissionRefused", popup.status.gate), { error: true });
  api.permissions.request([hostPattern(popup.status.gate)]).then((granted) => (granted ? work() : refused()), refused);
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
          h(
            "label",
            { for: `end-${session.id}` },
            t("deviceLine", session.device, formatDate(session.last_used_at, { withTime: true })),
          ),
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
