/** The account card while signed in: the supporter's email, tier and end date, and sign-out. */

import { formatDate, h, send, t } from "../../lib/ui.js";
import { $ } from "./shared.js";

export function renderAccount(popup) {
  const account = popup.status.account ?? {};
  const until = account.expiresAt ? formatDate(account.expiresAt) : t("noEndDate");
  const signOut = () => popup.apply(send({ type: "sign-out" }), t("signedOut"));
  $("account-body").replaceChildren(
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
  );
}
