/**
 * The `{type: handler}` map behind the dispatcher. Each handler gets the checked message and the
 * sender as the browser reported it (see lib/dispatch.js).
 */

import * as api from "../lib/api.js";
import { openSignIn } from "../lib/compat.js";
import { ledgerEntries } from "../lib/ledger.js";
import { allSites, passForOrigin } from "../lib/memberships.js";
import { namesByKey, siteName } from "../lib/names.js";
import { hostPattern } from "../lib/origins.js";
import { Refusal } from "../lib/refusal.js";
import { pagePass } from "./delivery.js";
import { refreshNames } from "./names.js";
import { loadAccount, requestCode, signIn, signOut } from "./session.js";
import { allowSite, forgetGate, recordIntent, removeSite } from "./sites.js";
import * as state from "./state.js";
import { passFailure, queueUpkeep, upkeep } from "./upkeep.js";

/** A page may ask to open the sign-in this often at most; asks in between get the last answer. */
const OPEN_SIGNIN_EVERY_MS = 5_000;
let lastOpenSignIn = { at: 0, opened: Promise.resolve(false) };
/** Answer a page's ask to open the sign-in after this long at most (gate.js waits 300 ms). */
const OPEN_SIGNIN_ANSWER_MS = 150;

const byKey = (key) => (a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0);

/**
 * What the popup shows: the preset gate (in a branded build), every membership with its account
 * and allowed sites (their names and passes), the site names known, and the ledger.
 */
async function status() {
  const [all, cache, ledger, names, preset] = await Promise.all([
    state.memberships.get(),
    state.passes.get(),
    state.ledger.get(),
    state.names.get(),
    state.preset(),
  ]);
  const now = Date.now();
  const permitted = (origin) => api.permissions.contains([hostPattern(origin)]);
  const memberships = await Promise.all(
    Object.values(all)
      .sort(byKey("gate"))
      .map(async (membership) => ({
        gate: membership.gate,
        gatePermitted: await permitted(membership.gate),
        signedIn: membership.session !== null,
        tokenType: membership.session?.tokenType ?? null,
        account: membership.session?.account ?? null,
        notice: membership.notice ?? null,
        sites: await Promise.all(
          Object.values(membership.sites)
            .sort(byKey("origin"))
            .map(async (entry) => ({
              origin: entry.origin,
              site: entry.site,
              gate: membership.gate,
              name: siteName(names, { gate: membership.gate, site: entry.site, origin: entry.origin }),
              permitted: await permitted(entry.origin),
              passExpiresAt: passForOrigin(all, cache, entry.origin, now) ? cache[entry.origin].expiresAt : null,
              failure: passFailure(entry.origin) ?? null,
            })),
        ),
      })),
  );
  return {
    preset,
    memberships,
    sites: memberships.flatMap((membership) => membership.sites),
    names: namesByKey(names),
    ledger: ledgerEntries(ledger).map((entry) => ({
      ...entry,
      name: siteName(names, { gate: entry.gate, site: entry.site, origin: entry.origin }),
    })),
  };
}

const changing = (work) => async (message, sender) => {
  await state.exclusive(() => work(message, sender));
  return status();
};

/** After a sign-in from a page's popup: allow that page's site too, when the browser let us reach it. */
async function allowAfterSignIn(gate, { origin, site }) {
  if (origin && site && (await api.permissions.contains([hostPattern(origin)]))) {
    await allowSite({ origin, site, gate });
  } else {
    await upkeep();
  }
}

export const handlers = {
  status,

  "refresh-account": changing(async () => {
    const all = await state.memberships.get();
    for (const membership of Object.values(all).filter((item) => item.session !== null)) {
      await loadAccount(membership.gate).catch((error) => {
        if (!(error instanceof Refusal)) throw error;
      });
    }
    await upkeep();
  }),

  "refresh-names": async ({ gate, site }) => {
    await refreshNames(gate && site ? [{ gate, site }] : []);
    return status();
  },

  "request-code": async ({ gate, email, site }) => {
    await requestCode(gate, email, site);
    return {};
  },

  "verify-code": changing(async ({ gate, email, code, endSessions, origin, site }) => {
    await signIn(gate, "code", { email, code: code.trim(), end_sessions: endSessions ?? [] });
    await allowAfterSignIn(gate, { origin, site });
  }),

  activate: changing(async ({ gate, code, endSessions, origin, site }) => {
    await signIn(gate, "activation", { code, end_sessions: endSessions ?? [] });
    await allowAfterSignIn(gate, { origin, site });
  }),

  "sign-out": changing(({ gate }) => signOut(gate)),

  "forget-gate": changing(({ gate }) => forgetGate(gate)),

  "intend-allow": async (request) => {
    await recordIntent(request);
    return {};
  },

  "allow-site": changing((request) => allowSite(request)),

  "remove-site": changing(({ origin }) => removeSite(origin)),

  "clear-ledger": changing(() => state.ledger.set({})),

  "page-pass": (_message, sender) => pagePass(sender.origin, queueUpkeep),

  /**
   * Open the sign-in for the page's tab. gate.js waits 300 ms for word, and opening the popup
   * can take longer, so the answer comes once it opened or, at the latest, after
   * `OPEN_SIGNIN_ANSWER_MS` while it is still opening: `{opened: false}` only when it failed.
   */
  "open-signin": async (_message, sender) => {
    const allowed = allSites(await state.memberships.get()).some((entry) => entry.origin === sender.origin);
    if (!allowed) return { opened: false };
    const now = Date.now();
    if (now - lastOpenSignIn.at < OPEN_SIGNIN_EVERY_MS) return { opened: await lastOpenSignIn.opened };
    const opening = api.tabs.get(sender.tabId).then(openSignIn).then(
      () => true,
      () => false,
    );
    lastOpenSignIn = { at: now, opened: opening };
    const stillOpening = new Promise((resolve) => setTimeout(resolve, OPEN_SIGNIN_ANSWER_MS, true));
    return { opened: await Promise.race([opening, stillOpening]) };
  },
};
