/**
 * The "This site" card: whether the page uses supportgate and with which gate, what its
 * detection found, whether it gets the reader's status, and the button to allow or stop that.
 */

import * as api from "../../lib/api.js";
import { hostPattern } from "../../lib/origins.js";
import { h, say, send, t } from "../../lib/ui.js";
import { $, removeSite } from "./shared.js";

export function renderSite(popup) {
  $("site-body").replaceChildren(...siteContent(popup));
}

function siteContent(popup) {
  const { page, status } = popup;
  if (page === null) return [h("p", {}, t("siteUnreadable"))];
  const host = new URL(page.origin).host;
  if (page.advert === null) return [h("p", {}, t("siteNoGate", host))];
  const { gate, site } = page.advert;
  const name = popup.siteName(gate, site, page.origin);
  const allowed = status.sites.find((entry) => entry.origin === page.origin && entry.gate === gate);
  const signedIn = popup.signedIn(gate);
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("siteUses")),
    h("dd", { id: "site-gate" }, t("siteGate", new URL(gate).host)),
    h("dt", {}, t("siteAdblock")),
    h("dd", { id: "site-adblock" }, t(`detection_${page.detection ?? "unknown"}`)),
    h("dt", {}, t("siteStatus")),
    h("dd", { id: "site-status" }, siteStatusText(signedIn, allowed)),
  );
  const parts = [h("p", { class: "site-name", id: "site-name" }, name), facts];
  if (allowed) {
    const remove = () => removeSite(popup, page.origin, name);
    parts.push(h("button", { type: "button", id: "site-remove", class: "quiet", onclick: remove }, t("siteRemove")));
  } else if (signedIn) {
    const allow = () => allowCurrentSite(popup, name);
    parts.push(h("button", { type: "button", id: "site-allow", onclick: allow }, t("siteAllow", name)));
  } else {
    parts.push(h("p", {}, t("siteSignInFirst", name)));
  }
  return parts;
}

function siteStatusText(signedIn, allowed) {
  if (!allowed) return t("statusNotShared");
  if (!signedIn) return t("statusSignedOut");
  if (allowed.passExpiresAt !== null) return t("statusShared");
  if (allowed.failure) return t("statusFailure", allowed.failure.message);
  return t("statusWaiting");
}

function allowCurrentSite(popup, name) {
  const { page } = popup;
  const request = { origin: page.origin, site: page.advert.site, gate: page.advert.gate };
  // Ask for the permission first, while the click still counts as the reader's gesture. The
  // worker is told of the wish too, in case the prompt closes this popup before it answers.
  const granted = api.permissions.request([hostPattern(page.origin)]);
  send({ type: "intend-allow", ...request });
  const refused = () => say(t("sitePermissionRefused"), { error: true });
  granted.then(async (ok) => {
    if (!ok) {
      refused();
      return;
    }
    await popup.apply(send({ type: "allow-site", ...request }), t("siteAllowed", name));
  }, refused);
}
