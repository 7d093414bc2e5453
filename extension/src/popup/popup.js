/**
 * The popup: the current site's status, sign-in, the allowed sites and the ledger, one card each
 * (drawn by the modules in views/). This module reads the page and the worker's status, keeps
 * them, and picks what the account card shows.
 *
 * It also works as a page in a tab (`popup.html?tab=<id>`), which is how the extension opens
 * the sign-in where the browser will not open the popup for it.
 */

import { localise, say, send } from "../lib/ui.js";
import { readPage } from "./page.js";
import { renderAccount } from "./views/account.js";
import { clearLedger, renderLedger } from "./views/ledger.js";
import { $, sayError } from "./views/shared.js";
import { renderSignIn } from "./views/signin.js";
import { renderSite } from "./views/site.js";
import { renderSites } from "./views/sites.js";

/** What every view is given: the page, the worker's status, and the ways to change what shows. */
const popup = {
  /** The page in the current tab: `{origin, advert, detection}`, or null when it can't be read. */
  page: null,
  /** The service worker's last status answer. */
  status: null,
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
  /** Draw the account card: the account when signed in, else the sign-in. */
  renderAccountCard() {
    if (popup.status.signedIn) renderAccount(popup);
    else renderSignIn(popup);
  },
};

function render() {
  renderSite(popup);
  popup.renderAccountCard();
  renderSites(popup);
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
  if (popup.status.signedIn) {
    // The gate may know more than the worker's copy (a new tier, an end date, ended support).
    const fresh = await send({ type: "refresh-account" });
    if (fresh.ok) {
      popup.show(fresh);
    } else if (fresh.error.code === "signed-out") {
      await popup.refresh();
    }
  }
}

start();
