/** The ledger card: the sites that received the reader's status and when, and clearing the list. */

import { formatDate, h, send, t } from "../../lib/ui.js";
import { $ } from "./shared.js";

export function renderLedger(popup) {
  const { ledger } = popup.status;
  $("ledger").hidden = ledger.length === 0;
  $("ledger-list").replaceChildren(
    ...ledger.map((entry) =>
      h(
        "li",
        {},
        h("span", { class: "site-label", title: entry.origin }, entry.name ?? new URL(entry.origin).host),
        h(
          "time",
          { datetime: new Date(entry.lastAt).toISOString() },
          t("ledgerLast", formatDate(entry.lastAt, { withTime: true })),
        ),
      ),
    ),
  );
}

export function clearLedger(popup) {
  return popup.apply(send({ type: "clear-ledger" }), t("ledgerCleared"));
}
