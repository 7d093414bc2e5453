/**
 * Memberships: one per gate the supporter signed in to. Each holds its session (tokens, account),
 * the sites allowed to see that gate's status, and why its last session ended. They live in
 * `storage.local` as `{[gate]: membership}`; these functions are pure and return new objects.
 *
 * An allowed origin belongs to exactly one membership, and gets passes from that gate only: a
 * cached pass is handed to an origin only when it was fetched from the gate the origin is allowed
 * under, for the site it is allowed as.
 */

import { isUsable } from "./passes.js";

/** A membership with no session and no sites. */
export function emptyMembership(gate) {
  return { gate, session: null, sites: {}, notice: null };
}

/** The memberships, with one for `gate` (a new, empty one if there was none). */
export function ensureMembership(all, gate) {
  return Object.hasOwn(all, gate) ? all : { ...all, [gate]: emptyMembership(gate) };
}

/** The memberships with `gate`'s session set (a sign-in) or cleared (null, with a notice or not). */
export function withSession(all, gate, session, notice = null) {
  const current = ensureMembership(all, gate)[gate];
  return { ...all, [gate]: { ...current, session, notice: session === null ? notice : null } };
}

/** The memberships without `gate`'s: its session and its sites are forgotten. */
export function removeMembership(all, gate) {
  const { [gate]: _gone, ...rest } = all;
  return rest;
}

/** The membership `origin` is allowed under, or null. */
export function membershipOf(all, origin) {
  return Object.values(all).find((item) => Object.hasOwn(item.sites, origin)) ?? null;
}

/**
 * The memberships with `origin` allowed as `site` under `gate`. An origin allowed under another
 * gate before moves: it belongs to one membership at a time.
 */
export function allowSite(all, { gate, origin, site, now }) {
  const before = membershipOf(all, origin);
  const kept = before === null || before.gate === gate ? all : removeSite(all, origin);
  const current = ensureMembership(kept, gate)[gate];
  const allowedAt = before?.gate === gate ? before.sites[origin].allowedAt : now;
  return { ...kept, [gate]: { ...current, sites: { ...current.sites, [origin]: { origin, site, allowedAt } } } };
}

/** The memberships with `origin` no longer allowed anywhere. */
export function removeSite(all, origin) {
  const owner = membershipOf(all, origin);
  if (owner === null) return all;
  const { [origin]: _gone, ...sites } = owner.sites;
  return { ...all, [owner.gate]: { ...owner, sites } };
}

/** Every allowed site: `{gate, origin, site, allowedAt, signedIn}`, in origin order. */
export function allSites(all) {
  return Object.values(all)
    .flatMap((item) => Object.values(item.sites).map((entry) => ({ ...entry, gate: item.gate, signedIn: item.session !== null })))
    .sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0));
}

/** The allowed sites of the memberships that are signed in: the ones that get passes. */
export function activeSites(all) {
  return allSites(all).filter((entry) => entry.signedIn);
}

/** Whether a cached pass may go to its origin: fetched from the origin's own gate, for its site. */
function belongs(all, entry, now) {
  if (!entry || !isUsable(entry, now)) return false;
  const owner = membershipOf(all, entry.origin);
  return owner !== null && owner.session !== null && owner.gate === entry.gate && owner.sites[entry.origin].site === entry.site;
}

/** The pass cache without the passes no origin may receive (any more). */
export function keptPasses(all, cache, now) {
  return Object.fromEntries(Object.entries(cache).filter(([origin, entry]) => entry?.origin === origin && belongs(all, entry, now)));
}

/** What `origin` may receive: `{gate, site, pass}` from its own gate's cached pass, or null. */
export function passForOrigin(all, cache, origin, now) {
  const entry = cache[origin];
  if (!belongs(all, entry, now) || entry.origin !== origin) return null;
  return { gate: entry.gate, site: entry.site, pass: entry.pass };
}

/** The header-rule grants: each origin with its own pass, and no other. */
export function passGrants(all, cache, now) {
  return Object.values(keptPasses(all, cache, now)).map(({ origin, pass }) => ({ origin, pass }));
}

/** The host patterns the memberships still need: every gate's and every allowed site's. */
export function neededOrigins(all) {
  return [...Object.keys(all), ...allSites(all).map((entry) => entry.origin)];
}

/**
 * Memberships from an install that had one configured gate: `settings.gate` and the allowed
 * `sites` (`{[origin]: {origin, site, gate, allowedAt}}`) become signed-out memberships, each site
 * under the gate it was allowed for. Null when there is nothing to migrate.
 */
export function migrateLegacy({ settings, sites }) {
  const gates = new Set();
  if (typeof settings?.gate === "string") gates.add(settings.gate);
  const entries = Object.values(sites ?? {}).filter(
    (entry) => entry && typeof entry.origin === "string" && typeof entry.site === "string" && typeof entry.gate === "string",
  );
  for (const entry of entries) gates.add(entry.gate);
  if (gates.size === 0) return null;
  let all = {};
  for (const gate of gates) all = ensureMembership(all, gate);
  for (const entry of entries) {
    all = allowSite(all, { gate: entry.gate, origin: entry.origin, site: entry.site, now: entry.allowedAt ?? 0 });
  }
  return all;
}
