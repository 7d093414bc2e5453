/**
 * How passes reach sites: header rules for the allowed origins that have a pass, and the
 * handshake content script registered for the allowed origins. Both are rebuilt from storage
 * by `sync`, so they can never drift from the memberships and passes the worker keeps. Each
 * origin gets only its own pass, fetched from the gate it is allowed under. The handshake script
 * gets its page's pass from `pagePass`, which writes each delivery to the ledger.
 */

import * as api from "../lib/api.js";
import { recordDelivery } from "../lib/ledger.js";
import { allSites, keptPasses, passForOrigin, passGrants } from "../lib/memberships.js";
import { hostPattern } from "../lib/origins.js";
import { buildPassRules, sameRules } from "../lib/rules.js";
import * as state from "./state.js";

const HANDSHAKE_ID = "supportgate-handshake";

/**
 * Make the browser's header rules and content script match storage: rules for the usable passes
 * of signed-in memberships' sites, the handshake script on every allowed site the browser lets
 * us reach.
 */
export async function sync(now = Date.now()) {
  const [all, cache] = await Promise.all([state.memberships.get(), state.passes.get()]);
  const kept = keptPasses(all, cache, now);
  if (Object.keys(kept).length !== Object.keys(cache).length) await state.passes.set(kept);
  await syncHeaderRules(buildPassRules(passGrants(all, kept, now)));
  await syncHandshake(await reachablePatterns(allSites(all).map((entry) => entry.origin)));
}

async function syncHeaderRules(wanted) {
  const current = await api.headerRules.current();
  if (sameRules(current, wanted)) return;
  await api.headerRules.replace(
    current.map((rule) => rule.id),
    wanted,
  );
}

async function reachablePatterns(origins) {
  const patterns = [...new Set(origins.map(hostPattern))].sort();
  const granted = await Promise.all(patterns.map((pattern) => api.permissions.contains([pattern])));
  return patterns.filter((_, index) => granted[index]);
}

async function syncHandshake(matches) {
  const [registered] = await api.contentScripts.registered([HANDSHAKE_ID]);
  if (matches.length === 0) {
    if (registered) await api.contentScripts.unregister([HANDSHAKE_ID]);
    return;
  }
  const script = {
    id: HANDSHAKE_ID,
    matches,
    js: ["content/handshake.js"],
    runAt: "document_start",
    allFrames: false,
    persistAcrossSessions: true,
  };
  if (!registered) {
    await api.contentScripts.register([script]);
  } else if (JSON.stringify([...registered.matches].sort()) !== JSON.stringify(matches)) {
    await api.contentScripts.update([script]);
  }
}

/**
 * The pass for the page asking, judged by the origin the browser reported for it: `{site,
 * pass}` for an allowed site with a usable pass from its own gate, else `{site: null, pass:
 * null}`. A delivery is written to the ledger.
 *
 * It runs outside `state.exclusive`, since a page is waiting, and changes neither the
 * memberships nor the passes (the ledger has a queue of its own). When the cached pass will not
 * do, it runs `renew` (the queued upkeep) and looks again. The upkeep is passed in, not
 * imported, because the upkeep itself syncs through this module.
 */
export async function pagePass(origin, renew, now = Date.now()) {
  const none = { site: null, pass: null };
  let found = passForOrigin(await state.memberships.get(), await state.passes.get(), origin, now);
  if (found === null) {
    const owner = allSites(await state.memberships.get()).find((entry) => entry.origin === origin);
    if (!owner?.signedIn) return none;
    await renew();
    found = passForOrigin(await state.memberships.get(), await state.passes.get(), origin, Date.now());
    if (found === null) return none;
  }
  await recordLedger({ origin, site: found.site, gate: found.gate, at: now });
  return { site: found.site, pass: found.pass };
}

const ledgerQueue = state.serial();

function recordLedger(delivery) {
  return ledgerQueue(async () => {
    const before = await state.ledger.get();
    const after = recordDelivery(before, delivery);
    if (after !== before) await state.ledger.set(after);
  });
}
