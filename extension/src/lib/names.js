/**
 * Site names: what a gate's `GET /v1/sites/{site}/about` says a site is called, cached on this
 * device so the popup and the ledger show "The Daily Demo" instead of an origin. A name is asked
 * again after a day; a failed ask is not repeated for an hour. Without a name, the host is shown.
 */

/** Ask for a name again after this long. */
export const NAME_TTL_MS = 24 * 60 * 60_000;
/** After a failed ask, wait this long before the next. */
export const NAME_RETRY_MS = 60 * 60_000;
/** The most names kept; the oldest go first. */
export const NAMES_LIMIT = 200;

/** The cache key for a site on a gate. */
export const nameKey = (gate, site) => `${gate} ${site}`;

/**
 * The name fields from an `/about` answer for `site`: `{name, logoUrl, supportUrl}`, or null
 * when the answer is not about that site or has no usable name.
 */
export function nameFromAbout(body, site) {
  if (body === null || typeof body !== "object" || body.id !== site) return null;
  const name = typeof body.name === "string" ? body.name.replace(/\s+/g, " ").trim() : "";
  if (name.length === 0 || name.length > 200) return null;
  const url = (value) => (typeof value === "string" && /^https?:\/\//.test(value) ? value : null);
  return { name, logoUrl: url(body.logo_url), supportUrl: url(body.support_url) };
}

/** The `{gate, site}` pairs whose name is missing, a day old, or failed more than an hour ago. */
export function namesDue(cache, pairs, now) {
  const seen = new Set();
  return pairs.filter(({ gate, site }) => {
    const key = nameKey(gate, site);
    if (seen.has(key)) return false;
    seen.add(key);
    const entry = cache[key];
    if (!entry) return true;
    if (entry.failedAt !== undefined && now - entry.failedAt < NAME_RETRY_MS) return false;
    return !entry.name || now - entry.fetchedAt >= NAME_TTL_MS;
  });
}

/**
 * The cache after an ask: with the name found, or with the failure noted (a name known before
 * is kept until a new one comes). The oldest entries go past `NAMES_LIMIT`.
 */
export function withAnswer(cache, { gate, site }, found, now) {
  const key = nameKey(gate, site);
  const before = cache[key];
  const entry = found ? { ...found, fetchedAt: now } : { ...(before?.name ? before : {}), failedAt: now };
  const next = { ...cache, [key]: entry };
  const keys = Object.keys(next);
  if (keys.length <= NAMES_LIMIT) return next;
  const age = (item) => Math.max(item.fetchedAt ?? 0, item.failedAt ?? 0);
  const kept = keys.sort((a, b) => age(next[b]) - age(next[a])).slice(0, NAMES_LIMIT);
  return Object.fromEntries(kept.map((item) => [item, next[item]]));
}

/** The name to show for a site: the gate's name for it, else the origin's host, else the site id. */
export function siteName(cache, { gate, site, origin }) {
  const found = gate && site ? cache[nameKey(gate, site)]?.name : undefined;
  if (found) return found;
  if (origin) {
    try {
      return new URL(origin).host;
    } catch {
      // fall through to the site id
    }
  }
  return site ?? "";
}

/** The names the popup needs, by key: `{[key]: name}` for every cached name. */
export function namesByKey(cache) {
  return Object.fromEntries(Object.entries(cache).filter(([, entry]) => entry.name).map(([key, entry]) => [key, entry.name]));
}
