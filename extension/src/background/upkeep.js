/**
 * The periodic upkeep: refresh the access token when due, fetch the passes that are missing or
 * due, bring delivery in line with storage, and set the alarm for the next round.
 *
 * It also remembers, for this worker's life, why a site's pass could not be fetched, so the popup
 * can say so and the next try waits a while.
 */

import * as api from "../lib/api.js";
import { duePasses, nextPassRefresh, passFromResponse } from "../lib/passes.js";
import { Refusal } from "../lib/refusal.js";
import { refreshDueAt } from "../lib/tokens.js";
import { activeSites, sync } from "./delivery.js";
import { refreshIfDue, withAccessToken } from "./session.js";
import * as state from "./state.js";

const ALARM = "supportgate-upkeep";
/** After a failed refresh or pass fetch, wait this long before the next try. */
const RETRY_MS = 60_000;
/** Failures per origin in this worker's life, so the popup can say why a site has no pass. */
const failures = new Map();
/** When the last upkeep failed to refresh the session (the gate unreachable, say), or 0. */
let upkeepFailedAt = 0;

/** The upkeep, for callers already inside `state.exclusive`. */
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
    await scheduleUpkeep();
  }
}

/** The upkeep, queued behind the other changes: for callers outside `state.exclusive`. */
export const queueUpkeep = () => state.exclusive(() => upkeep());

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

/** Set the alarm for the next upkeep (or clear it when signed out). */
export async function scheduleUpkeep() {
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

/** Forget why `origin`'s pass could not be fetched: the site was allowed again, or removed. */
export function forgetFailure(origin) {
  failures.delete(origin);
}
