/**
 * The sites the supporter allowed: allowing one (also when the permission prompt closed the
 * popup first), removing one, and following the permissions the browser grants and takes away.
 *
 * Functions here that change the sites expect to run inside `state.exclusive`.
 */

import * as api from "../lib/api.js";
import { hostPattern } from "../lib/origins.js";
import { Refusal } from "../lib/refusal.js";
import { sync } from "./delivery.js";
import * as state from "./state.js";
import { forgetFailure, scheduleUpkeep, upkeep } from "./upkeep.js";

/** How long the popup's wish to allow a site lasts while the permission prompt is open. */
const INTENT_MS = 10 * 60_000;

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
  forgetFailure(origin);
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
  forgetFailure(origin);
  await sync();
  await scheduleUpkeep();
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
