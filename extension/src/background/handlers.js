/**
 * The `{type: handler}` map behind the dispatcher. Each handler gets the checked message and the
 * sender as the browser reported it (see lib/dispatch.js).
 */

import * as api from "../lib/api.js";
import { openSignIn } from "../lib/compat.js";
import { ledgerEntries } from "../lib/ledger.js";
import { hostPattern } from "../lib/origins.js";
import { isUsable } from "../lib/passes.js";
import { Refusal } from "../lib/refusal.js";
import { pagePass } from "./delivery.js";
import { loadAccount, requestCode, signIn, signOut } from "./session.js";
import { allowSite, recordIntent, removeSite } from "./sites.js";
import * as state from "./state.js";
import { passFailure, queueUpkeep, upkeep } from "./upkeep.js";

/** A page may ask to open the sign-in this often at most. */
const OPEN_SIGNIN_EVERY_MS = 5_000;
let lastOpenSignIn = 0;

/** What the popup shows: the account, the allowed sites with their passes, the ledger. */
async function status() {
  const [settings, session, allowed, cache, ledger, notice] = await Promise.all([
    state.settings.get(),
    state.session.get(),
    state.sites.get(),
    state.passes.get(),
    state.ledger.get(),
    state.signOutNotice.get(),
  ]);
  const now = Date.now();
  const sites = await Promise.all(
    Object.values(allowed)
      .sort((a, b) => (a.origin < b.origin ? -1 : 1))
      .map(async (entry) => ({
        origin: entry.origin,
        site: entry.site,
        gate: entry.gate,
        permitted: await api.permissions.contains([hostPattern(entry.origin)]),
        passExpiresAt: isUsable(cache[entry.origin], now) ? cache[entry.origin].expiresAt : null,
        failure: passFailure(entry.origin) ?? null,
      })),
  );
  return {
    gate: settings.gate,
    gatePermitted: await api.permissions.contains([hostPattern(settings.gate)]),
    signedIn: session !== null,
    account: session?.account ?? null,
    notice,
    sites,
    ledger: ledgerEntries(ledger),
  };
}

const changing = (work) => async (message, sender) => {
  await state.exclusive(() => work(message, sender));
  return status();
};

export const handlers = {
  status,

  "refresh-account": changing(async () => {
    if ((await state.session.get()) === null) return;
    await loadAccount().catch((error) => {
      if (!(error instanceof Refusal)) throw error;
    });
    await upkeep();
  }),

  "request-code": async ({ email, site }) => {
    await requestCode(email, site);
    return {};
  },

  "verify-code": changing(async ({ email, code, endSessions }) => {
    await signIn("code", { email, code: code.trim(), end_sessions: endSessions ?? [] });
    await upkeep();
  }),

  activate: changing(async ({ code, endSessions }) => {
    await signIn("activation", { code, end_sessions: endSessions ?? [] });
    await upkeep();
  }),

  "sign-out": changing(() => signOut()),

  "intend-allow": async (request) => {
    await recordIntent(request);
    return {};
  },

  "allow-site": changing((request) => allowSite(request)),

  "remove-site": changing(({ origin }) => removeSite(origin)),

  "clear-ledger": changing(() => state.ledger.set({})),

  "set-gate": changing(async ({ gate }) => {
    const settings = await state.settings.get();
    if (settings.gate === gate) return;
    // Tokens and sites belong to one gate: a new gate starts from a clean slate.
    if ((await state.session.get()) !== null) await signOut();
    for (const origin of Object.keys(await state.sites.get())) await removeSite(origin);
    await state.settings.set({ ...settings, gate });
  }),

  "page-pass": (_message, sender) => pagePass(sender.origin, queueUpkeep),

  "open-signin": async (_message, sender) => {
    const now = Date.now();
    if (now - lastOpenSignIn < OPEN_SIGNIN_EVERY_MS) return { opened: false };
    lastOpenSignIn = now;
    await openSignIn(await api.tabs.get(sender.tabId));
    return { opened: true };
  },
};
