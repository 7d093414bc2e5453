/** The allowed sites card: every site that may see the reader's status, each with a Remove button. */

import { h, t } from "../../lib/ui.js";
import { $, removeSite } from "./shared.js";

export function renderSites(popup) {
  const { sites } = popup.status;
  $("sites").hidden = sites.length === 0;
  $("sites-list").replaceChildren(
    ...sites.map((entry) => {
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
            onclick: () => removeSite(popup, entry.origin),
          },
          t("remove"),
        ),
      );
    }),
  );
}
