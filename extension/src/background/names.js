/**
 * Site names for the popup and the ledger, asked of each site's own gate
 * (`GET /v1/sites/{site}/about`, public) and cached in `storage.local` (see lib/names.js).
 */

import { allSites } from "../lib/memberships.js";
import { nameFromAbout, namesDue, withAnswer } from "../lib/names.js";
import { gateClient } from "./gate-client.js";
import * as state from "./state.js";

const queue = state.serial();

/**
 * Ask for the names that are missing or stale: every allowed site's, every ledger entry's, and
 * `extra` pairs (the page the popup looks at). A gate that does not answer leaves the host shown.
 *
 * @param {Array<{gate: string, site: string}>} extra
 */
export function refreshNames(extra = []) {
  return queue(async () => {
    const [all, ledger, cache] = await Promise.all([state.memberships.get(), state.ledger.get(), state.names.get()]);
    const pairs = [
      ...extra,
      ...allSites(all).map(({ gate, site }) => ({ gate, site })),
      ...Object.values(ledger)
        .filter((entry) => typeof entry.gate === "string")
        .map(({ gate, site }) => ({ gate, site })),
    ];
    const now = Date.now();
    const due = namesDue(cache, pairs, now);
    if (due.length === 0) return;
    const answers = await Promise.all(
      due.map((pair) =>
        gateClient(pair.gate)
          .about(pair.site)
          .then(
            (body) => nameFromAbout(body, pair.site),
            () => null,
          ),
      ),
    );
    let next = await state.names.get();
    due.forEach((pair, index) => {
      next = withAnswer(next, pair, answers[index], now);
    });
    await state.names.set(next);
  });
}
