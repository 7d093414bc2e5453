/**
 * The popup: the current site's status, the sign-in for the gate the page (or a branded build)
 * names, every membership, and the ledger, one card each (drawn by the modules in views/). This
 * module reads the page and the worker's status, keeps them, and works out which gate to offer
 * the sign-in for.
 *
 * It also works as a page in a tab (`popup.html?tab=<id>`), which is how the extension opens
 * the sign-in where the browser will not open the popup for it.
 */

import { nameKey } from "../lib/names.js";
import { localise, say, send } from "../lib/ui.js";
import { readPage } from "./page.js";
import { clearLedger, renderLedger } from "./views/ledger.js";
import { renderMemberships } from "./views/memberships.js";
import { $, sayError } from "./views/shared.js";
import { renderSignIn } from "./views/signin.js";
import { renderSite } from "./views/site.js";

/** What every view is given: the page, the worker's status, and the ways to change what shows. */
const popup = {
  /** The page in the current tab: `{origin, advert, detection}`, or null when it can't be read. */
  page: null,
  /** The service worker's last status answer. */
  status: null,
  /** The gate of a signed-out membership the reader chose to sign in to again, or null. */
  chosenGate: null,
  /** Take a new status and draw every card with it. */
  show(answer) {
    popup.status = answer;
    render();
  },
  /** Show the worker's answer: the new status on success, the error otherwise. */
  async apply(pending, success) {
    const answer = await pending;
    if (!answer.ok) {
      sayError(answer);
      if (answer.error.code === "signed-out") await popup.refresh();
      return false;
    }
    popup.show(answer);
    if (success) say(success);
    return true;
  },
  /** Ask the worker for its status again. */
  async refresh() {
    const answer = await send({ type: "status" });
    if (answer.ok) popup.show(answer);
  },
  /** The membership for `gate` in the last status, or undefined. */
  membership(gate) {
    return popup.status.memberships.find((item) => item.gate === gate);
  },
  /** Whether the reader is signed in to `gate`. */
  signedIn(gate) {
    return popup.membership(gate)?.signedIn === true;
  },
  /** A site's name as its gate gives it, else its host. */
  siteName(gate, site, origin) {
    return popup.status.names[nameKey(gate, site)] ?? (origin ? new URL(origin).host : site);
  },
  /** A membership's name: its sites' names, else the preset's name for its gate, else the gate's host. */
  membershipName(gate) {
    const names = (popup.membership(gate)?.sites ?? []).map((entry) => entry.name);
    if (names.length) return [...new Set(names)].join(", ");
    const { preset } = popup.status;
    if (preset?.gate === gate && preset.name) return preset.name;
    return new URL(gate).host;
  },
  /**
   * The gate to offer the sign-in for, or null: a signed-out membership the reader chose, else
   * the page's gate, else the branded build's gate, while not signed in there.
   * `{gate, name, site?, origin?}`; with a site, the sign-in also allows it.
   */
  signInTarget() {
    const { page, status } = popup;
    if (popup.chosenGate !== null && !popup.signedIn(popup.chosenGate)) {
      const advert = page?.advert?.gate === popup.chosenGate ? page.advert : null;
      if (advert) return pageTarget();
      return { gate: popup.chosenGate, name: popup.membershipName(popup.chosenGate) };
    }
    if (page?.advert && !popup.signedIn(page.advert.gate)) return pageTarget();
    if (status.preset && !popup.signedIn(status.preset.gate)) {
      return { gate: status.preset.gate, name: popup.membershipName(status.preset.gate) };
    }
    return null;
  },
  /** Offer the sign-in for a signed-out membership's gate. */
  chooseGate(gate) {
    popup.chosenGate = gate;
    render();
    document.querySelector("#signin-body input")?.focus();
  },
  /** Draw the sign-in card alone (a step of the sign-in changed). */
  renderSignInCard() {
    renderSignIn(popup);
  },
};

function pageTarget() {
  const { origin, advert } = popup.page;
  return { gate: advert.gate, site: advert.site, origin, name: popup.siteName(advert.gate, advert.site, origin) };
}

function render() {
  renderSite(popup);
  renderSignIn(popup);
  renderMemberships(popup);
  renderLedger(popup);
}

async function start() {
  localise();
  $("ledger-clear").addEventListener("click", () => clearLedger(popup));
  const [first, seen] = await Promise.all([send({ type: "status" }), readPage()]);
  popup.page = seen;
  if (!first.ok) return sayError(first);
  popup.show(first);
  document.body.dataset.ready = "true";
  const advert = seen?.advert;
  const names = await send({ type: "refresh-names", ...(advert ? { gate: advert.gate, site: advert.site } : {}) });
  if (names.ok) popup.show(names);
  if (first.memberships.some((item) => item.signedIn)) {
    // The gates may know more than the worker's copy (a new tier, an end date, ended support).
    const fresh = await send({ type: "refresh-account" });
    if (fresh.ok) {
      popup.show(fresh);
    } else if (fresh.error.code === "signed-out") {
      await popup.refresh();
    }
  }
  document.body.dataset.settled = "true";
}

start();
