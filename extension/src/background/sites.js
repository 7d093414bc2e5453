/**
 * The sites the supporter allowed, each under the gate its page names: allowing one (also when
 * the permission prompt closed the popup first), removing one, forgetting a whole membership, and
 * following the permissions the browser grants and takes away.
 *
 * Functions here that change the memberships expect to run inside `state.exclusive`.
 */

import * as api from "../lib/api.js";
import * as memberships from "../lib/memberships.js";
import { hostPattern } from "../lib/origins.js";
import { Refusal } from "../lib/refusal.js";
import { sync } from "./delivery.js";
import { sessionOf, signOut } from "./session.js";
import * as state from "./state.js";
import { forgetFailure, scheduleUpkeep, upkeep } from "./upkeep.js";

/** How long the popup's wish to allow a site lasts while the permission prompt is open. */
const INTENT_MS = 10 * 60_000;

/**
 * Allow `origin` to receive the status of `gate`'s membership, once the browser has granted the
 * host permission. The origin gets passes from that gate only; allowed under another gate
 * before, it moves.
 */
export async function allowSite({ origin, site, gate }) {
  if (!(await api.permissions.contains([hostPattern(origin)]))) {
    throw new Refusal("site-permission", `The browser has not let supportgate reach ${origin}.`);
  }
  const all = await state.memberships.get();
  await state.memberships.set(memberships.allowSite(all, { gate, origin, site, now: Date.now() }));
  forgetFailure(origin);
  await upkeep();
}

/** Stop sharing status with `origin`: its pass, header rule and host permission go. */
export async function removeSite(origin) {
  const all = await state.memberships.get();
  if (memberships.membershipOf(all, origin) === null) return;
  const after = memberships.removeSite(all, origin);
  await state.memberships.set(after);
  const cache = await state.passes.get();
  delete cache[origin];
  await state.passes.set(cache);
  forgetFailure(origin);
  await sync();
  await scheduleUpkeep();
  await releasePermission(origin, after);
}

/** Forget `gate`'s membership: sign out there, stop sharing with its sites, forget them. */
export async function forgetGate(gate) {
  const all = await state.memberships.get();
  if (!Object.hasOwn(all, gate)) return;
  if ((await sessionOf(gate)) !== null) await signOut(gate);
  for (const origin of Object.keys(all[gate].sites)) await removeSite(origin);
  const after = memberships.removeMembership(await state.memberships.get(), gate);
  await state.memberships.set(after);
  await releasePermission(gate, after);
}

/** Give the host permission for `origin` back unless a membership still needs that host. */
async function releasePermission(origin, all) {
  const pattern = hostPattern(origin);
  const stillNeeded = memberships.neededOrigins(all).some((other) => hostPattern(other) === pattern);
  if (!stillNeeded) {
    // A permission the manifest grants (the test build's) cannot be removed; nothing is lost.
    await api.permissions.remove([pattern]).catch(() => false);
  }
}

/** Forget the sites the browser no longer lets us reach (the reader took the permission away). */
export async function permissionsRemoved(patterns) {
  const removed = new Set(patterns);
  const gone = memberships.allSites(await state.memberships.get()).filter((entry) => removed.has(hostPattern(entry.origin)));
  for (const { origin } of gone) {
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
  for (const { origin, site, gate } of intents) {
    if (await api.permissions.contains([hostPattern(origin)])) {
      await allowSite({ origin, site, gate }).catch(() => undefined);
    }
  }
}
