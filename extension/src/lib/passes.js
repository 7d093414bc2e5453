/**
 * The pass cache: one pass per allowed origin, fetched again a margin before it expires so a page
 * never receives one about to lapse.
 */

/** Fetch a new pass when this share of its lifetime is left ... */
const REFRESH_SHARE = 0.2;
/** ... but at least this long before it expires ... */
const MIN_MARGIN_MS = 30_000;
/** ... and no earlier than this before. */
const MAX_MARGIN_MS = 10 * 60_000;
/** A pass with less left than this is not handed out. */
const USABLE_MARGIN_MS = 5_000;

/**
 * A cache entry from the gate's answer to `POST /v1/passes`.
 *
 * @param {{pass: string, expires_at: string}} body
 * @param {{origin: string, site: string, gate: string, now: number}} context
 */
export function passFromResponse(body, { origin, site, gate, now }) {
  const expiresAt = Date.parse(body?.expires_at);
  if (typeof body?.pass !== "string" || body.pass.length === 0 || !Number.isFinite(expiresAt)) {
    throw new TypeError("the gate's pass answer has no pass or no expires_at");
  }
  return { origin, site, gate, pass: body.pass, expiresAt, fetchedAt: now };
}

/** When to fetch this pass again. */
export function passRefreshAt(entry) {
  const lifetime = Math.max(0, entry.expiresAt - entry.fetchedAt);
  const margin = Math.min(MAX_MARGIN_MS, Math.max(MIN_MARGIN_MS, lifetime * REFRESH_SHARE));
  return entry.expiresAt - margin;
}

/** Whether the pass may still be handed out. */
export function isUsable(entry, now) {
  return entry !== undefined && entry !== null && now < entry.expiresAt - USABLE_MARGIN_MS;
}

/**
 * The allowed origins whose pass is missing or due for a new one.
 *
 * @param {Record<string, object>} cache pass entries by origin
 * @param {string[]} origins the allowed origins
 */
export function duePasses(cache, origins, now) {
  return origins.filter((origin) => {
    const entry = cache[origin];
    return !entry || now >= passRefreshAt(entry);
  });
}

/** The cache without entries for origins no longer allowed and without expired passes. */
export function prunePasses(cache, origins, now) {
  const allowed = new Set(origins);
  return Object.fromEntries(
    Object.entries(cache).filter(([origin, entry]) => allowed.has(origin) && isUsable(entry, now)),
  );
}

/** The passes to put in header rules: the usable ones. */
export function usableGrants(cache, now) {
  return Object.values(cache)
    .filter((entry) => isUsable(entry, now))
    .map(({ origin, pass }) => ({ origin, pass }));
}

/** The earliest time a cached pass is due for a new one, or null for an empty cache. */
export function nextPassRefresh(cache) {
  const times = Object.values(cache).map(passRefreshAt);
  return times.length ? Math.min(...times) : null;
}
