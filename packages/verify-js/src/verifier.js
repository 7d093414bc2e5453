/**
 * PassVerifier: one site's passes verified offline against the gate's published keys, the
 * JavaScript twin of the service's `supportgate_verify.PassVerifier` (packages/supportgate-verify).
 *
 * Only Web APIs (fetch, AbortSignal) and `jose`, so it runs in Node.js 18+ and in edge runtimes.
 */

import {
  DEFAULT_LEEWAY_SECONDS,
  InvalidToken,
  PASS_TYPE,
  jwksEntries,
  keysFromJwks,
  passFromClaims,
  verifyToken,
} from "./rules.js";

/** Least time between two fetches of the JWKS, whatever its max-age or the kids seen. */
export const JWKS_REFETCH_INTERVAL_SECONDS = 60;
/** How long keys are kept when the JWKS answer says nothing of caching: the gate's own max-age. */
export const JWKS_DEFAULT_MAX_AGE_SECONDS = 300;
const MAX_JWKS_BYTES = 256 * 1024;
const VERSION = "0.1.0";

export class PassVerifier {
  #url;
  #site;
  #issuer;
  #leeway;
  #timeoutMs;
  #clock;
  #fetch;
  #logger;
  #keys = new Map();
  #keysReady = null;
  #freshUntil = null;
  #fetchedAt = null;
  #fetching = null;
  #cache;
  #cacheSize;

  /**
   * @param source `{ jwksUrl }` to fetch the gate's JWKS when needed, or `{ keys }` (a JWKS or a
   *   list of JWKs) to fetch nothing.
   * @param options `site` (your site id: a pass's `aud` must be it), `issuer` (the gate's public
   *   URL); optional `leeway` (seconds, 30), `cacheSize` (valid passes remembered, 10000; 0 turns
   *   it off), `timeoutMs` (for a JWKS fetch, 5000), `clock` (milliseconds since the epoch,
   *   `Date.now`), `fetch` (`globalThis.fetch`), `logger` (gets `warn` when a fetch fails, `console`).
   */
  constructor(source, options) {
    const { jwksUrl, keys } = source ?? {};
    if ((jwksUrl === undefined) === (keys === undefined)) {
      throw new TypeError("give either jwksUrl or keys");
    }
    const { site, issuer } = options ?? {};
    if (typeof site !== "string" || site === "" || typeof issuer !== "string" || issuer === "") {
      throw new TypeError("site and issuer are required strings");
    }
    if (jwksUrl !== undefined) {
      let scheme = null;
      try {
        scheme = new URL(jwksUrl).protocol;
      } catch {
        scheme = null;
      }
      if (scheme !== "http:" && scheme !== "https:") {
        throw new TypeError(`jwksUrl must be an http(s) URL, not ${JSON.stringify(String(jwksUrl))}`);
      }
      this.#url = String(jwksUrl);
    } else {
      jwksEntries(keys);
      this.#keysReady = keysFromJwks(keys).then((found) => {
        this.#keys = found;
      });
    }
    const {
      leeway = DEFAULT_LEEWAY_SECONDS,
      cacheSize = 10_000,
      timeoutMs = 5_000,
      clock = Date.now,
      fetch = globalThis.fetch,
      logger = console,
    } = options;
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new TypeError("cacheSize must be a whole number, not negative");
    }
    this.#site = site;
    this.#issuer = issuer;
    this.#leeway = leeway;
    this.#timeoutMs = timeoutMs;
    this.#clock = clock;
    this.#fetch = fetch;
    this.#logger = logger;
    this.#cacheSize = cacheSize;
    this.#cache = new Map();
  }

  /**
   * The pass's holder, `{ sub, tier, entitlements, session, expiresAt }`, if `token` is a valid
   * pass for this site; otherwise throws InvalidToken with its `reason` (`expired`,
   * `wrong_audience`, `bad_signature`, `unknown_key`, `keys_unavailable`, ...).
   */
  async verify(token) {
    const now = Number(this.#clock()) / 1000;
    const cached = this.#cached(token, now);
    if (cached !== undefined) return cached;
    const verified = passFromClaims(await this.#check(token, now));
    if (this.#cacheSize > 0 && now * 1000 < verified.expiresAt.getTime()) {
      this.#remember(token, verified);
    }
    return verified;
  }

  async #check(token, now) {
    try {
      return await this.#verifyWith(await this.#currentKeys(now), token, now);
    } catch (error) {
      if (!(error instanceof InvalidToken) || error.reason !== "unknown_key" || !(await this.#refetch(now))) {
        throw error;
      }
    }
    return this.#verifyWith(this.#keys, token, now);
  }

  #verifyWith(keys, token, now) {
    return verifyToken(token, keys, {
      typ: PASS_TYPE,
      audience: this.#site,
      issuer: this.#issuer,
      now,
      leeway: this.#leeway,
    });
  }

  async #currentKeys(now) {
    if (this.#keysReady !== null) await this.#keysReady;
    if (this.#url === undefined || (this.#freshUntil !== null && now < this.#freshUntil)) {
      return this.#keys;
    }
    await this.#refetch(now);
    if (this.#keys.size === 0) {
      throw new InvalidToken("keys_unavailable", `could not fetch ${this.#url}`);
    }
    return this.#keys;
  }

  /** Fetch the JWKS unless one was fetched lately; whether new keys came. */
  async #refetch(now) {
    if (this.#url === undefined) return false;
    if (this.#fetching !== null) return this.#fetching;
    const last = this.#fetchedAt;
    if (last !== null && last <= now && now < last + JWKS_REFETCH_INTERVAL_SECONDS) {
      return false;
    }
    this.#fetchedAt = now;
    this.#fetching = this.#download(now).finally(() => {
      this.#fetching = null;
    });
    return this.#fetching;
  }

  async #download(now) {
    try {
      const { document, maxAge } = await download(this.#url, this.#fetch, this.#timeoutMs);
      this.#keys = await keysFromJwks(document);
      this.#freshUntil = now + Math.max(maxAge, JWKS_REFETCH_INTERVAL_SECONDS);
      return true;
    } catch (error) {
      this.#logger?.warn?.(`could not fetch the JWKS at ${this.#url}: ${error?.message ?? error}`);
      return false;
    }
  }

  #cached(token, now) {
    const found = this.#cache.get(token);
    if (found === undefined) return undefined;
    this.#cache.delete(token);
    if (now * 1000 >= found.expiresAt.getTime()) return undefined;
    this.#cache.set(token, found); // the least recently used goes first
    return found;
  }

  #remember(token, verified) {
    this.#cache.delete(token);
    this.#cache.set(token, verified);
    while (this.#cache.size > this.#cacheSize) {
      this.#cache.delete(this.#cache.keys().next().value);
    }
  }
}

async function download(url, fetchImpl, timeoutMs) {
  const response = await fetchImpl(url, {
    headers: {
      Accept: "application/jwk-set+json, application/json",
      "User-Agent": `supportgate-verify-js/${VERSION}`,
    },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const body = await readAtMost(response, MAX_JWKS_BYTES);
  return { document: JSON.parse(new TextDecoder().decode(body)), maxAge: maxAgeOf(response.headers.get("Cache-Control") ?? "") };
}

async function readAtMost(response, limit) {
  const chunks = [];
  let size = 0;
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`the JWKS is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

/** Seconds the keys may be kept, from a Cache-Control value, as the service reads it. */
export function maxAgeOf(cacheControl) {
  for (const directive of cacheControl.toLowerCase().split(",")) {
    const trimmed = directive.trim();
    const equals = trimmed.indexOf("=");
    const name = equals === -1 ? trimmed : trimmed.slice(0, equals);
    const value = equals === -1 ? "" : trimmed.slice(equals + 1).trim();
    if (name === "no-store" || name === "no-cache") return 0;
    if (name === "max-age" && /^[0-9]+$/.test(value)) return Number(value);
  }
  return JWKS_DEFAULT_MAX_AGE_SECONDS;
}
