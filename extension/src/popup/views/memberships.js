/**
 * The memberships card: one entry per gate the reader signed in to, with the sites it serves
 * (by name), the account (email, tier, end date) or why it is signed out, its allowed sites each
 * with a Remove button, and sign-out (or sign-in again and forget, while signed out).
 */

import { formatDate, h, send, t } from "../../lib/ui.js";
import { $, removeSite } from "./shared.js";

export function renderMemberships(popup) {
  const { memberships } = popup.status;
  $("memberships").hidden = memberships.length === 0;
  $("memberships-list").replaceChildren(...memberships.map((membership) => entry(popup, membership)));
}

function entry(popup, membership) {
  const name = popup.membershipName(membership.gate);
  const headingId = `membership-${slug(membership.gate)}`;
  return h(
    "li",
    { class: "membership", "data-gate": membership.gate, "aria-labelledby": headingId },
    h("h3", { id: headingId, class: "membership-name" }, name),
    h("p", { class: "membership-gate" }, t("membershipGate", new URL(membership.gate).host)),
    membership.signedIn ? account(membership) : signedOut(membership),
    sites(popup, membership),
    actions(popup, membership, name),
  );
}

function account(membership) {
  const details = membership.account ?? {};
  const until = details.expiresAt ? formatDate(details.expiresAt) : t("noEndDate");
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("accountEmail")),
    h("dd", { class: "account-email" }, details.email ?? "—"),
    h("dt", {}, t("accountTier")),
    h("dd", { class: "account-tier" }, details.tierName ?? details.tier ?? "—"),
    h("dt", {}, t("accountUntil")),
    h("dd", { class: "account-until" }, until),
  );
}

function signedOut(membership) {
  const reason = membership.notice?.reason?.replaceAll("-", "_");
  return h(
    "p",
    { class: reason ? "notice signout-notice" : "signed-out" },
    reason ? t(`notice_${reason}`) : t("membershipSignedOut"),
  );
}

function sites(popup, membership) {
  if (membership.sites.length === 0) return h("p", { class: "membership-empty" }, t("membershipNoSites"));
  return h(
    "ul",
    { class: "list sites-list", "aria-label": t("sitesHeading") },
    ...membership.sites.map((site) =>
      h(
        "li",
        {},
        h("span", { class: "site-label", title: site.origin }, site.name),
        h(
          "button",
          {
            type: "button",
            class: "quiet",
            "aria-label": t("siteRemoveNamed", site.name),
            onclick: () => removeSite(popup, site.origin, site.name),
          },
          t("remove"),
        ),
      ),
    ),
  );
}

function actions(popup, membership, name) {
  const { gate } = membership;
  if (membership.signedIn) {
    const signOut = () => popup.apply(send({ type: "sign-out", gate }), t("signedOutOf", name));
    return h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "quiet sign-out", "aria-label": t("signOutNamed", name), onclick: signOut }, t("signOut")),
    );
  }
  const forget = () => popup.apply(send({ type: "forget-gate", gate }), t("gateForgotten", name));
  // The sign-in card may be offering this gate already.
  const offered = popup.signInTarget()?.gate === gate;
  return h(
    "div",
    { class: "actions" },
    offered
      ? null
      : h(
          "button",
          { type: "button", class: "sign-in-again", "aria-label": t("signInNamed", name), onclick: () => popup.chooseGate(gate) },
          t("signIn"),
        ),
    h("button", { type: "button", class: "quiet forget", "aria-label": t("forgetNamed", name), onclick: forget }, t("forget")),
  );
}

function slug(gate) {
  return gate.replace(/[^A-Za-z0-9]+/g, "-");
}
