/**
 * What the popup's views share: finding an element, saying what went wrong, and removing a site
 * (from the site card or from a membership's list of sites).
 */

import { say, send, t } from "../../lib/ui.js";

export const $ = (id) => document.getElementById(id);

/** Show a refused answer's message in the message line. */
export function sayError(answer) {
  say(answer.error?.message || t("errorGeneric"), { error: true });
}

/** Stop sharing the reader's status with `origin` (called `name`). */
export async function removeSite(popup, origin, name) {
  await popup.apply(send({ type: "remove-site", origin }), t("siteRemoved", name));
}
