/**
 * The "This site" card: whether the page uses supportgate with the reader's gate, what its
 * detection found, whether it gets the reader's status, and the button to allow or stop that.
 */

import * as api from "../../lib/api.js";
import { hostPattern } from "../../lib/origins.js";
import { h, say, send, t } from "../../lib/ui.js";
import { $, removeSite } from "./shared.js";

export function renderSite(popup) {
  const body = $("site-body");
  body.replaceChildren(...siteContent(popup));
}

function siteContent(popup) {
  const { page, status } = popup;
  if (page === null) return [h("p", {}, t("siteUnreadable"))];
  const host = new URL(page.origin).host;
  if (page.advert === null) return [h("p", {}, t("siteNoGate", host))];
  if (page.advert.gate !== status.gate) {
    return [h("p", {}, t("siteOtherGate", host, page.advert.gate, status.gate))];
  }
  const allowed = status.sites.find((entry) => entry.origin === page.origin);
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("siteUses")),
    h("dd", {}, t("yes")),
    h("dt", {}, t("siteAdblock")),
    h("dd", { id: "site-adblock" }, t(`detection_${page.detection ?? "unknown"}`)),
    h("dt", {}, t("siteStatus")),
    h("dd", { id: "site-status" }, siteStatusText(status, allowed)),
  );
  const parts = [h("p", { class: "site-name" }, host), facts];
  if (allowed) {
    const remove = () => removeSite(popup, popup.page.origin);
    parts.push(h("button", { type: "button", id: "site-remove", class: "quiet", onclick: remove }, t("siteRemove")));
  } else {
    const allow = () => allowCurrentSite(popup);
    parts.push(h("button", { type: "button", id: "site-allow", onclick: allow }, t("siteAllow", host)));
  }
  return parts;
}

function siteStatusText(status, allowed) {
  if (!allowed) return t("statusNotShared");
  if (!status.signedIn) return t("statusSignedOut");
  if (allowed.passExpiresAt !== null) return t("statusShared");
  if (allowed.failure) return t("statusFailure", allowed.failure.message);
  return t("statusWaiting");
}

function allowCurrentSite(popup) {
  const { page } = popup;
  const request = { origin: page.origin, site: page.advert.site, gate: page.advert.gate };
  // Ask for the permission first, while the click still counts as the reader's gesture. The
  // worker is told of the wish too, in case the prompt closes this popup before it answers.
  const granted = api.permissions.request([hostPattern(page.origin)]);
  send({ type: "intend-allow", ...request });
  const refused = () => say(t("sitePermissionRefused"), { error: true });
  granted.then(
    async (ok) => {
      if (!ok) {
        refused();
        return;
      }
      await popup.apply(send({ type: "allow-site", ...request }), t("siteAllowed", new URL(page.origin).host));
    },
    refused,
  );
}
