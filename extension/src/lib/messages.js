/**
 * The messages the service worker accepts, who may send each, and the shape of each.
 *
 * `extension`: the popup (in its toolbar frame or a tab). `page`: the handshake content script, which speaks
 * for a web page and so is trusted with nothing but its own origin's pass.
 */

import { isOrigin, isSiteId, normaliseGateUrl } from "./origins.js";

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}$/;
/** An emailed sign-in code (the popup checks it with the same pattern before sending). */
export const SIX_DIGITS = /^\s*[0-9]{6}\s*$/;
/** An activation code as a reader may type it (the popup checks it the same way). */
export const ACTIVATION_CODE = /^[0-9A-Za-z\s-]{16,40}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

const email = (value) => typeof value === "string" && value.length <= 254 && EMAIL.test(value);
const sixDigits = (value) => typeof value === "string" && SIX_DIGITS.test(value);
const activationCode = (value) => typeof value === "string" && ACTIVATION_CODE.test(value);
const sessionIds = (value) =>
  Array.isArray(value) && value.length <= 100 && value.every((id) => typeof id === "string" && SESSION_ID.test(id));
const gateUrl = (value) => typeof value === "string" && normaliseGateUrl(value) === value;
const optional = (check) => Object.assign((value) => value === undefined || check(value), { optional: true });

/** Each message type: who may send it and its fields (all required unless marked optional). */
export const MESSAGES = Object.freeze({
  status: { from: "extension", fields: {} },
  "refresh-account": { from: "extension", fields: {} },
  "refresh-names": { from: "extension", fields: { gate: optional(gateUrl), site: optional(isSiteId) } },
  "request-code": { from: "extension", fields: { gate: gateUrl, email, site: optional(isSiteId) } },
  "verify-code": {
    from: "extension",
    fields: {
      gate: gateUrl,
      email,
      code: sixDigits,
      endSessions: optional(sessionIds),
      origin: optional(isOrigin),
      site: optional(isSiteId),
    },
  },
  activate: {
    from: "extension",
    fields: {
      gate: gateUrl,
      code: activationCode,
      endSessions: optional(sessionIds),
      origin: optional(isOrigin),
      site: optional(isSiteId),
    },
  },
  "sign-out": { from: "extension", fields: { gate: gateUrl } },
  "forget-gate": { from: "extension", fields: { gate: gateUrl } },
  "intend-allow": { from: "extension", fields: { origin: isOrigin, site: isSiteId, gate: gateUrl } },
  "allow-site": { from: "extension", fields: { origin: isOrigin, site: isSiteId, gate: gateUrl } },
  "remove-site": { from: "extension", fields: { origin: isOrigin } },
  "clear-ledger": { from: "extension", fields: {} },
  "page-pass": { from: "page", fields: {} },
  "open-signin": { from: "page", fields: {} },
});

/**
 * The message checked against its schema: `{ok: true, type, value}` with only the known fields,
 * or `{ok: false, error}` naming what is wrong.
 */
export function validateMessage(message) {
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    return refused("a message is an object with a type");
  }
  const spec = Object.hasOwn(MESSAGES, message.type) ? MESSAGES[message.type] : undefined;
  if (!spec) return refused(`unknown message type: ${String(message.type).slice(0, 40)}`);
  for (const key of Object.keys(message)) {
    if (key !== "type" && !Object.hasOwn(spec.fields, key)) return refused(`${message.type}: unknown field ${key}`);
  }
  const value = {};
  for (const [key, check] of Object.entries(spec.fields)) {
    if (!check(message[key])) return refused(`${message.type}: ${key} is missing or malformed`);
    if (message[key] !== undefined) value[key] = message[key];
  }
  return { ok: true, type: message.type, value };
}

function refused(message) {
  return { ok: false, error: { code: "bad-message", message } };
}
