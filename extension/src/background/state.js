/**
 * What the service worker keeps, and where:
 *
 * - `storage.local` (kept across browser restarts): `memberships` (one per gate: its DPoP-bound
 *   session, its allowed sites; see lib/memberships.js), `names` (site names from the gates) and
 *   `ledger`;
 * - secret storage (`storage.session`, memory only, where the browser has it): `passes` and the
 *   popup's pending `allowIntents`;
 * - IndexedDB: the device's DPoP key (lib/device-key.js), which never leaves the browser.
 *
 * The worker may be stopped between any two events, so nothing is cached in memory: each step
 * reads what it needs and writes what it changed. Steps that change the memberships or the
 * passes run one at a time through `exclusive`.
 */

import * as api from "../lib/api.js";
import { secretStorage } from "../lib/compat.js";
import { migrateLegacy } from "../lib/memberships.js";
import { readPreset } from "../lib/preset.js";

/** The memberships, by gate. */
export const memberships = {
  get: () => api.storage.local.get("memberships", {}),
  set: (value) => api.storage.local.set("memberships", value),
};

/** Site names from the gates (see lib/names.js). */
export const names = {
  get: () => api.storage.local.get("names", {}),
  set: (value) => api.storage.local.set("names", value),
};

export const ledger = {
  get: () => api.storage.local.get("ledger", {}),
  set: (value) => api.storage.local.set("ledger", value),
};

/** The pass cache (see lib/passes.js): `{[origin]: entry}`, each entry naming its gate. */
export const passes = {
  get: () => secretStorage().get("passes", {}),
  set: (value) => secretStorage().set("passes", value),
};

/** Sites the popup asked to allow while the browser's permission prompt was open. */
export const allowIntents = {
  get: () => secretStorage().get("allowIntents", {}),
  set: (value) => secretStorage().set("allowIntents", value),
};

/**
 * Turn an install from before memberships (one configured gate in `settings`, its `sites`, a
 * session in memory) into signed-out memberships, once.
 */
export async function migrate() {
  if ((await api.storage.local.get("memberships", null)) !== null) return;
  const [settings, sites] = await Promise.all([
    api.storage.local.get("settings", null),
    api.storage.local.get("sites", null),
  ]);
  await memberships.set(migrateLegacy({ settings, sites }) ?? {});
  await api.storage.local.remove(["settings", "sites"]);
  await secretStorage().remove(["session", "signOutNotice"]);
}

let presetRead = null;

/** The branded build's preset (`preset.json`): `{gate, name}`, or null in an unbranded build. */
export function preset() {
  presetRead ??= readPreset(api.runtime.getURL("preset.json"));
  return presetRead;
}

/** A queue: each function passed runs after the previous one has finished. */
export function serial() {
  let tail = Promise.resolve();
  return (work) => {
    const run = tail.then(work);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** The queue for changes to the memberships and the passes. */
export const exclusive = serial();
