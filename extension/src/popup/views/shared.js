/**
 * What the popup's views share: finding an element, the message line under the cards, and
 * removing a site (from the site card or from the list of allowed sites).
 */

import { send, t } from "../../lib/ui.js";

export const $ = (id) => document.getElementById(id);

export function say(text, { error = false } = {}) {
  const message = $("message");
  message.textContent = text;
  message.classList.toggle("error", error);
}

export function sayError(answer) {
  say(answer.error?.message || t("errorGeneric"), { error: true });
}

/** Stop sharing the reader's status with `origin`. */
export async function removeSite(popup, origin) {
  await popup.apply(send({ type: "remove-site", origin }), t("siteRemoved", new URL(origin).host));
}
