/**
 * How passes reach sites: header rules for the allowed origins that have a pass, and the
 * handshake content script registered for the allowed origins. Both are rebuilt from storage
 * by `sync`, so they can never drift from the sites and passes the worker keeps. The handshake
 * script gets its page's pass from `pagePass`, which writes each delivery to the ledger.
 */

import * as api from "../lib/api.js";
import { recordDelivery } from "../lib/ledger.js";
import { hostPattern } from "../lib/origins.js";
import { isUsable, prunePasses, usableGrants } from "../lib/passes.js";
import { buildPassRules, sameRules } from "../lib/rules.js";
import * as state from "./state.js";

const HANDSHAKE_ID = "supportgate-handshake";

/** The allowed sites that belong to the current gate. */
export async function activeSites() {
  const [{ gate }, allowed] = await Promise.all([state.settings.get(), state.sites.get()]);
  return Object.values(allowed).filter((entry) => entry.gate === gate);
}

/**
 * Make the browser's header rules and content script match storage: rules for usable passes of
 * allowed sites while signed in, the handshake script on allowed sites the browser lets us reach.
 */
export async function sync(now = Date.now()) {
  const [active, session, cache] = await Promise.all([activeSites(), state.session.get(), state.passes.get()]);
  const origins = active.map((entry) => entry.origin);
  const kept = session === null ? {} : prunePasses(cache, origins, now);
  if (Object.keys(kept).length !== Object.keys(cache).length) await state.passes.set(kept);
  await syncHeaderRules(buildPassRules(usableGrants(kept, now)));
  await syncHandshake(await reachablePatterns(origins));
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
 * pass}` for an allowed site with a usable pass, else `{site: null, pass: null}`. A delivery is
 * written to the ledger.
 *
 * It runs outside `state.exclusive`, since a page is waiting, and changes neither the session nor
 * the passes nor the sites (the ledger has a queue of its own). When the cached pass will not do,
 * it runs `renew` (the queued upkeep) and looks again. The upkeep is passed in, not imported,
 * because the upkeep itself syncs through this module.
 */
export async function pagePass(origin, renew, now = Date.now()) {
  const entry = (await activeSites()).find((candidate) => candidate.origin === origin);
  if (!entry || (await state.session.get()) === null) return { site: null, pass: null };
  let cached = (await state.passes.get())[origin];
  if (!isUsable(cached, now)) {
    await renew();
    cached = (await state.passes.get())[origin];
    if (!isUsable(cached, Date.now())) return { site: null, pass: null };
  }
  await recordLedger({ origin, site: entry.site, at: now });
  return { site: entry.site, pass: cached.pass };
}

const ledgerQueue = state.serial();

function recordLedger(delivery) {
  return ledgerQueue(async () => {
    const before = await state.ledger.get();
    const after = recordDelivery(before, delivery);
    if (after !== before) await state.ledger.set(after);
  });
}
