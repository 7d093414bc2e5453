/**
 * The sites the supporter allowed, their passes, and the periodic upkeep that keeps both fresh.
 *
 * Functions here that change storage expect to run inside `state.exclusive`, except `pagePass`,
 * which only reads (a page is waiting for it).
 */

import * as api from "../lib/api.js";
import { recordDelivery } from "../lib/ledger.js";
import { hostPattern } from "../lib/origins.js";
import { duePasses, isUsable, nextPassRefresh, passFromResponse } from "../lib/passes.js";
import { Refusal } from "../lib/refusal.js";
import { refreshDueAt } from "../lib/tokens.js";
import { activeSites, sync } from "./delivery.js";
import * as state from "./state.js";
import { refreshIfDue, withAccessToken } from "./session.js";

const ALARM = "supportgate-upkeep";
/** After a failed refresh or pass fetch, wait this long before the next try. */
const RETRY_MS = 60_000;
/** How long the popup's wish to allow a site lasts while the permission prompt is open. */
const INTENT_MS = 10 * 60_000;
/** Failures per origin in this worker's life, so the popup can say why a site has no pass. */
const failures = new Map();
/** When the last upkeep failed to refresh the session (the gate unreachable, say), or 0. */
let upkeepFailedAt = 0;

/**
 * Allow `origin` to receive the supporter's status, once the browser has granted the host
 * permission and the page's advertisement names the configured gate.
 */
export async function allowSite({ origin, site, gate }) {
  const settings = await state.settings.get();
  if (gate !== settings.gate) {
    throw new Refusal("other-gate", `This site uses the gate at ${gate}; supportgate is set up for ${settings.gate}.`);
  }
  if (!(await api.permissions.contains([hostPattern(origin)]))) {
    throw new Refusal("site-permission", `The browser has not let supportgate reach ${origin}.`);
  }
  const allowed = await state.sites.get();
  const before = allowed[origin];
  await state.sites.set({ ...allowed, [origin]: { origin, site, gate, allowedAt: before?.allowedAt ?? Date.now() } });
  const cache = await state.passes.get();
  if (before && before.site !== site) {
    delete cache[origin];
    await state.passes.set(cache);
  }
  failures.delete(origin);
  await upkeep();
}

/** Stop sharing status with `origin`: its pass, header rule and host permission go. */
export async function removeSite(origin) {
  const allowed = await state.sites.get();
  if (!Object.hasOwn(allowed, origin)) return;
  delete allowed[origin];
  await state.sites.set(allowed);
  const cache = await state.passes.get();
  delete cache[origin];
  await state.passes.set(cache);
  failures.delete(origin);
  await sync();
  await schedule();
  const pattern = hostPattern(origin);
  const { gate } = await state.settings.get();
  const stillNeeded =
    Object.keys(allowed).some((other) => hostPattern(other) === pattern) || hostPattern(gate) === pattern;
  if (!stillNeeded) {
    // A permission the manifest grants (the test build's) cannot be removed; nothing is lost.
    await api.permissions.remove([pattern]).catch(() => false);
  }
}

/** Forget the sites the browser no longer lets us reach (the reader took the permission away). */
export async function permissionsRemoved(patterns) {
  const removed = new Set(patterns);
  const allowed = await state.sites.get();
  const gone = Object.keys(allowed).filter((origin) => removed.has(hostPattern(origin)));
  for (const origin of gone) {
    if (!(await api.permissions.contains([hostPattern(origin)]))) await removeSite(origin);
  }
}

/** Remember that the popup asked to allow a site, in case it closes while the prompt is open. */
export async function recordIntent(request) {
  const intents = await state.allowIntents.get();
  await state.allowIntents.set({ ...intents, [request.origin]: { ...request, at: Date.now() } });
}

/** Allow the sites the popup asked for whose permission the browser has now granted. */
export async function permissionsAdded() {
  const now = Date.now();
  const intents = Object.values(await state.allowIntents.get()).filter((intent) => now - intent.at < INTENT_MS);
  await state.allowIntents.set({});
  for (const intent of intents) {
    if (await api.permissions.contains([hostPattern(intent.origin)])) {
      await allowSite(intent).catch(() => undefined);
    }
  }
}

/**
 * The periodic upkeep: refresh the access token when due, fetch the passes that are missing or
 * due, bring the header rules and content script in line, and set the next alarm.
 */
export async function upkeep(now = Date.now()) {
  try {
    if ((await state.session.get()) !== null) {
      await refreshIfDue(now);
      await fetchDuePasses(now);
    }
    upkeepFailedAt = 0;
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    upkeepFailedAt = Date.now();
  } finally {
    await sync();
    await schedule();
  }
}

async function fetchDuePasses(now) {
  const active = await activeSites();
  const cache = await state.passes.get();
  const due = duePasses(
    cache,
    active.map((entry) => entry.origin),
    now,
  ).filter((origin) => !(failures.get(origin)?.retryAt > now));
  for (const entry of active.filter((candidate) => due.includes(candidate.origin))) {
    try {
      const answer = await withAccessToken((client, token) => client.pass(token, entry.site, entry.origin));
      const fresh = passFromResponse(answer, { origin: entry.origin, site: entry.site, now: Date.now() });
      await state.passes.set({ ...(await state.passes.get()), [entry.origin]: fresh });
      failures.delete(entry.origin);
    } catch (error) {
      if (error instanceof Refusal && error.code === "signed-out") throw error;
      const retryAt = Date.now() + RETRY_MS;
      failures.set(entry.origin, { code: error.code ?? "error", message: error.message, retryAt });
    }
  }
}

async function schedule() {
  const [session, cache] = await Promise.all([state.session.get(), state.passes.get()]);
  if (session === null) {
    await api.alarms.clear(ALARM);
    return;
  }
  const times = [refreshDueAt(session), nextPassRefresh(cache), ...[...failures.values()].map((f) => f.retryAt)];
  const next = Math.min(...times.filter((time) => time !== null));
  const earliest = upkeepFailedAt ? upkeepFailedAt + RETRY_MS : Date.now() + 1_000;
  await api.alarms.set(ALARM, Math.max(next, earliest));
}

/** Whether an alarm is the upkeep's. */
export const isUpkeepAlarm = (alarm) => alarm.name === ALARM;

/** Why an origin has no pass, if a fetch failed: `{code, message}` or undefined. */
export function passFailure(origin) {
  const failure = failures.get(origin);
  return failure && { code: failure.code, message: failure.message };
}

/**
 * The pass for the page asking, judged by the origin the browser reported for it: `{site,
 * pass}` for an allowed site with a usable pass, else `{site: null, pass: null}`. A delivery is
 * written to the ledger.
 */
export async function pagePass(origin, now = Date.now()) {
  const entry = (await activeSites()).find((candidate) => candidate.origin === origin);
  if (!entry || (await state.session.get()) === null) return { site: null, pass: null };
  let cached = (await state.passes.get())[origin];
  if (!isUsable(cached, now)) {
    await state.exclusive(() => upkeep());
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
