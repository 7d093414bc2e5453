/**
 * Origins, host patterns and how a page names its gate: the `<meta name="supportgate">`
 * advertisement, or the address it loads gate.js from.
 *
 * An origin is the unit of trust everywhere in the extension: a site is allowed per origin
 * (scheme, host and port), its pass goes to that origin only, and its answer is given there only.
 */

const SITE_ID = /^[a-z0-9-]{1,64}$/;

/** The origin of an http(s) URL (`"http://news.example"`), or null for anything else. */
export function originOf(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
  if (parsed.username || parsed.password || !parsed.hostname) return null;
  return parsed.origin;
}

/** Whether `value` is already a canonical http(s) origin, as `URL.origin` writes it. */
export function isOrigin(value) {
  return typeof value === "string" && originOf(value) === value;
}

/**
 * The host permission pattern that covers an origin (`"http://news.example/*"`).
 *
 * Match patterns carry no port, so the pattern covers every port of the host: the exact origin
 * is what the service worker checks before it hands anything out.
 */
export function hostPattern(origin) {
  const url = new URL(origin);
  return `${url.protocol}//${url.hostname}/*`;
}

/**
 * A gate URL in its one written form: an http(s) origin plus an optional path, no trailing slash.
 * Returns null for anything that is not a plain gate address.
 */
export function normaliseGateUrl(value) {
  if (typeof value !== "string" || value.length > 2048) return null;
  let parsed;
  try {
    parsed = new URL(value.trim());
  } catch {
    return null;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
  if (parsed.username || parsed.password || parsed.search || parsed.hash) return null;
  return parsed.origin + parsed.pathname.replace(/\/+$/, "");
}

/** Whether `value` is a site id as the gate writes them (a lowercase slug). */
export function isSiteId(value) {
  return typeof value === "string" && SITE_ID.test(value);
}

/**
 * The gate advertisement in a page's meta tag: `site=<id>; gate=<gate url>`.
 * Returns `{site, gate}` or null when the content is missing or malformed.
 */
export function parseGateMeta(content) {
  if (typeof content !== "string" || content.length > 1024) return null;
  const fields = new Map();
  for (const part of content.split(";")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const key = part.slice(0, at).trim().toLowerCase();
    if (!fields.has(key)) fields.set(key, part.slice(at + 1).trim());
  }
  const site = fields.get("site");
  const gate = normaliseGateUrl(fields.get("gate") ?? "");
  if (!isSiteId(site) || gate === null) return null;
  return { site, gate };
}

const GATE_SCRIPT = /^(.*)\/v1\/sites\/([a-z0-9-]{1,64})\/gate\.js$/;

/**
 * The gate and site a gate.js address names (`<gate>/v1/sites/<site>/gate.js`): `{site, gate}`,
 * or null for any other script.
 */
export function parseGateScript(src) {
  if (typeof src !== "string" || src.length > 2048) return null;
  let parsed;
  try {
    parsed = new URL(src);
  } catch {
    return null;
  }
  const found = GATE_SCRIPT.exec(parsed.origin + parsed.pathname);
  if (found === null) return null;
  const gate = normaliseGateUrl(found[1]);
  return gate === null ? null : { site: found[2], gate };
}
