/**
 * The service worker's one message dispatcher: it works out who sent a message, refuses anyone
 * else, checks the message's shape, then looks its handler up by type.
 */

import { MESSAGES, validateMessage } from "./messages.js";
import { originOf } from "./origins.js";
import { Refusal } from "./refusal.js";

/**
 * Who sent a message, from the browser's own `MessageSender` (never from the message):
 * `{kind: "extension"}` for our pages, `{kind: "page", origin, tabId}` for the content script in
 * a tab's top frame, or null.
 *
 * @param {{id?: string, url?: string, origin?: string, tab?: {id: number}, frameId?: number}} sender
 * @param {{extensionId: string, extensionUrl: string}} self
 */
export function classifySender(sender, { extensionId, extensionUrl }) {
  if (!sender || sender.id !== extensionId || typeof sender.url !== "string") return null;
  if (sender.url.startsWith(extensionUrl)) return { kind: "extension" };
  if (!sender.tab || typeof sender.tab.id !== "number" || sender.frameId !== 0) return null;
  const origin = originOf(sender.url);
  if (origin === null) return null;
  // Where the browser reports the sender's origin as well, it must agree with its URL.
  if (sender.origin !== undefined && sender.origin !== origin) return null;
  return { kind: "page", origin, tabId: sender.tab.id };
}

/**
 * The dispatcher for a `{type: handler}` map. A handler gets the checked message and the
 * classified sender, and returns an object (sent back with `ok: true`) or throws a `Refusal`.
 *
 * @param {Record<string, (message: object, sender: object) => Promise<object>>} handlers
 * @param {{extensionId: string, extensionUrl: string, onError?: (error: unknown) => void}} self
 */
export function createDispatcher(handlers, self) {
  return async function dispatch(message, rawSender) {
    const sender = classifySender(rawSender, self);
    if (sender === null) return failure("sender", "this sender may not talk to supportgate");
    const type = message?.type;
    if (typeof type === "string" && Object.hasOwn(MESSAGES, type)) {
      if (MESSAGES[type].from !== sender.kind || !Object.hasOwn(handlers, type)) {
        return failure("sender", `${type} is not accepted from this sender`);
      }
    }
    const checked = validateMessage(message);
    if (!checked.ok) return checked;
    try {
      return { ok: true, ...(await handlers[checked.type](checked.value, sender)) };
    } catch (error) {
      if (error instanceof Refusal) return failure(error.code, error.message, error.details);
      self.onError?.(error);
      return failure("internal", "something went wrong in supportgate; try again");
    }
  };
}

function failure(code, message, details = {}) {
  return { ok: false, error: { code, message, ...details } };
}
