/**
 * The declarativeNetRequest rules that carry a pass: one rule per allowed origin, adding the
 * `Supportgate-Pass` header to requests to exactly that origin.
 */

import { isOrigin } from "./origins.js";

export const PASS_HEADER = "Supportgate-Pass";

/**
 * Resource types the header is added to: every type both Chromium and Firefox know, with
 * `main_frame` listed because a rule without `resourceTypes` skips top-level documents, which is
 * the request a server-side site reads the pass from.
 */
export const RESOURCE_TYPES = Object.freeze([
  "main_frame",
  "sub_frame",
  "stylesheet",
  "script",
  "image",
  "font",
  "object",
  "xmlhttprequest",
  "ping",
  "csp_report",
  "media",
  "websocket",
  "other",
]);

/**
 * The `urlFilter` for one origin: `|` anchors it at the start of the URL and the `/` after the
 * authority ends the host, so `https://news.example` matches neither `https://sub.news.example/`
 * nor `https://news.example.evil.com/` nor `https://news.example:8443/`.
 */
export function urlFilterFor(origin) {
  if (!isOrigin(origin)) throw new TypeError(`not an origin: ${origin}`);
  return `|${origin}/`;
}

/**
 * The full set of rules for the current passes, with ids 1..n in origin order so the same passes
 * always give the same rules.
 *
 * @param {Array<{origin: string, pass: string}>} grants
 */
export function buildPassRules(grants) {
  return [...grants]
    .sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0))
    .map((grant, index) => ({
      id: index + 1,
      priority: 1,
      action: {
        type: "modifyHeaders",
        requestHeaders: [{ header: PASS_HEADER, operation: "set", value: grant.pass }],
      },
      condition: { urlFilter: urlFilterFor(grant.origin), resourceTypes: [...RESOURCE_TYPES] },
    }));
}

/** Whether two rule lists are the same rules (so the browser's set need not be rewritten). */
export function sameRules(current, wanted) {
  return JSON.stringify(canonical(current)) === JSON.stringify(canonical(wanted));
}

function canonical(rules) {
  return [...rules]
    .sort((a, b) => a.id - b.id)
    .map((rule) => ({
      id: rule.id,
      header: rule.action?.requestHeaders?.[0]?.value ?? null,
      filter: rule.condition?.urlFilter ?? null,
      types: [...(rule.condition?.resourceTypes ?? [])].sort(),
    }));
}
