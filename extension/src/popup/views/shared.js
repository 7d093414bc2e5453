/**
 * What the popup's views share: finding an element, saying what went wrong, and removing a site
 * (from the site card or from the list of allowed sites).
 */

import { say, send, t } from "../../lib/ui.js";

export const $ = (id) => document.getElementById(id);

/** Show a refused answer's message in the message line. */
export function sayError(answer) {
  say(answer.error?.message || t("errorGeneric"), { error: true });
}

/** Stop sharing the reader's status with `origin`. */
export async function removeSite(popup, origin) {
  await popup.apply(send({ type: "remove-site", origin }), t("siteRemoved", new URL(origin).host));
}
