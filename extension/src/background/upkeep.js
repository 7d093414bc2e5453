/**
 * The periodic upkeep, for every signed-in membership: refresh its access token when due, fetch
 * the passes of its sites that are missing or due (each from its own gate), then bring delivery
 * in line with storage and set the alarm for the next round.
 *
 * It also remembers, for this worker's life, why a site's pass could not be fetched, so the popup
 * can say so and the next try waits a while.
 */

import * as api from "../lib/api.js";
import { activeSites } from "../lib/memberships.js";
import { duePasses, nextPassRefresh, passFromResponse } from "../lib/passes.js";
import { Refusal } from "../lib/refusal.js";
import { refreshDueAt } from "../lib/tokens.js";
import { sync } from "./delivery.js";
import { refreshIfDue, withAccessToken } from "./session.js";
import * as state from "./state.js";

const ALARM = "supportgate-upkeep";
/** After a failed refresh or pass fetch, wait this long before the next try. */
const RETRY_MS = 60_000;
/** Failures per origin in this worker's life, so the popup can say why a site has no pass. */
const failures = new Map();
/** When the last upkeep failed to refresh a gate's session (the gate unreachable, say), by gate. */
const upkeepFailedAt = new Map();

/** The upkeep, for callers already inside `state.exclusive`. */
export async function upkeep(now = Date.now()) {
  try {
    const all = await state.memberships.get();
    for (const membership of Object.values(all).filter((item) => item.session !== null)) {
      try {
        await refreshIfDue(membership.gate, now);
        await fetchDuePasses(membership.gate, now);
        upkeepFailedAt.delete(membership.gate);
      } catch (error) {
        if (!(error instanceof Refusal)) throw error;
        upkeepFailedAt.set(membership.gate, Date.now());
      }
    }
  } finally {
    await sync();
    await scheduleUpkeep();
  }
}

/** The upkeep, queued behind the other changes: for callers outside `state.exclusive`. */
export const queueUpkeep = () => state.exclusive(() => upkeep());

async function fetchDuePasses(gate, now) {
  const active = activeSites(await state.memberships.get()).filter((entry) => entry.gate === gate);
  const cache = await state.passes.get();
  const fromGate = Object.fromEntries(Object.entries(cache).filter(([, entry]) => entry.gate === gate));
  const due = duePasses(
    fromGate,
    active.map((entry) => entry.origin),
    now,
  ).filter((origin) => !(failures.get(origin)?.retryAt > now));
  for (const entry of active.filter((candidate) => due.includes(candidate.origin))) {
    try {
      const answer = await withAccessToken(gate, (client, auth) => client.pass(auth, entry.site, entry.origin));
      const fresh = passFromResponse(answer, { origin: entry.origin, site: entry.site, gate, now: Date.now() });
      await state.passes.set({ ...(await state.passes.get()), [entry.origin]: fresh });
      failures.delete(entry.origin);
    } catch (error) {
      if (error instanceof Refusal && error.code === "signed-out") throw error;
      const retryAt = Date.now() + RETRY_MS;
      failures.set(entry.origin, { code: error.code ?? "error", message: error.message, retryAt });
    }
  }
}

/** Set the alarm for the next upkeep (or clear it when no membership is signed in). */
export async function scheduleUpkeep() {
  const [all, cache] = await Promise.all([state.memberships.get(), state.passes.get()]);
  const sessions = Object.values(all).filter((item) => item.session !== null);
  if (sessions.length === 0) {
    await api.alarms.clear(ALARM);
    return;
  }
  const times = [
    ...sessions.map((item) => {
      const fromGate = Object.fromEntries(Object.entries(cache).filter(([, entry]) => entry.gate === item.gate));
      const due = Math.min(refreshDueAt(item.session), nextPassRefresh(fromGate) ?? Number.POSITIVE_INFINITY);
      const failedAt = upkeepFailedAt.get(item.gate);
      return failedAt ? Math.max(due, failedAt + RETRY_MS) : due;
    }),
    ...[...failures.values()].map((f) => f.retryAt),
  ];
  const next = Math.min(...times);
  await api.alarms.set(ALARM, Math.max(next, Date.now() + 1_000));
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
