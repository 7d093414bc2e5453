/**
 * The ledger: each site that received the supporter's status, and when it first and last did.
 * It lives on this device only and is never sent anywhere.
 */

/** The most sites the ledger keeps; the longest unused go first. */
export const LEDGER_LIMIT = 500;
/** Deliveries closer together than this update nothing (a page's subresources, reloads). */
const COALESCE_MS = 10_000;

/**
 * The ledger with one more delivery of a pass to `origin`; the same object when nothing changed.
 *
 * @param {Record<string, {origin: string, site: string, gate?: string, firstAt: number, lastAt: number}>} ledger
 * @param {{origin: string, site: string, gate?: string, at: number}} delivery
 */
export function recordDelivery(ledger, { origin, site, gate, at }) {
  const before = ledger[origin];
  if (before && before.site === site && before.gate === gate && at - before.lastAt < COALESCE_MS) return ledger;
  const entry = { origin, site, firstAt: before?.firstAt ?? at, lastAt: at };
  if (gate !== undefined) entry.gate = gate;
  const next = { ...ledger, [origin]: entry };
  const origins = Object.keys(next);
  if (origins.length <= LEDGER_LIMIT) return next;
  const keep = ledgerEntries(next).slice(0, LEDGER_LIMIT);
  return Object.fromEntries(keep.map((item) => [item.origin, item]));
}

/** The ledger's entries, the most recent delivery first. */
export function ledgerEntries(ledger) {
  return Object.values(ledger).sort((a, b) => b.lastAt - a.lastAt || (a.origin < b.origin ? -1 : 1));
}
