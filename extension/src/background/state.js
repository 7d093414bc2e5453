/**
 * What the service worker keeps, and where:
 *
 * - secret storage (`storage.session`): `session` (tokens and account) and `passes`;
 * - `storage.local`: `settings` (the gate URL), `sites` (the allowed origins) and `ledger`.
 *
 * The worker may be stopped between any two events, so nothing is cached in memory: each step
 * reads what it needs and writes what it changed. Steps that change the session, the passes or
 * the sites run one at a time through `exclusive`.
 */

import * as api from "../lib/api.js";
import { secretStorage } from "../lib/compat.js";

export const DEFAULT_GATE = "http://127.0.0.1:8000";

export const settings = {
  get: async () => ({ gate: DEFAULT_GATE, ...(await api.storage.local.get("settings", {})) }),
  set: (value) => api.storage.local.set("settings", value),
};

/** The allowed sites: `{[origin]: {origin, site, gate, allowedAt}}`. */
export const sites = {
  get: () => api.storage.local.get("sites", {}),
  set: (value) => api.storage.local.set("sites", value),
};

export const ledger = {
  get: () => api.storage.local.get("ledger", {}),
  set: (value) => api.storage.local.set("ledger", value),
};

/** The signed-in session (see lib/tokens.js), or null. */
export const session = {
  get: () => secretStorage().get("session", null),
  set: (value) => secretStorage().set("session", value),
};

/** The pass cache (see lib/passes.js): `{[origin]: entry}`. */
export const passes = {
  get: () => secretStorage().get("passes", {}),
  set: (value) => secretStorage().set("passes", value),
};

/** Why the last session ended, for the popup to say once: `{reason, at}` or null. */
export const signOutNotice = {
  get: () => secretStorage().get("signOutNotice", null),
  set: (value) => secretStorage().set("signOutNotice", value),
};

/** Sites the popup asked to allow while the browser's permission prompt was open. */
export const allowIntents = {
  get: () => secretStorage().get("allowIntents", {}),
  set: (value) => secretStorage().set("allowIntents", value),
};

/** A queue: each function passed runs after the previous one has finished. */
export function serial() {
  let tail = Promise.resolve();
  return (work) => {
    const run = tail.then(work);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** The queue for changes to the session, the passes and the sites. */
export const exclusive = serial();
