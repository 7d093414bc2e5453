/**
 * The pass rules, without I/O or a clock of their own: the JavaScript twin of the service's
 * `supportgate.tokens.jose`. Each rule is checked in the same order as there, so a token is
 * refused for the same reason by both.
 */

import { calculateJwkThumbprint, compactVerify, errors, importJWK } from "jose";

export const ALGORITHM = "EdDSA";
export const PASS_TYPE = "sg-pass+jwt";
export const MAX_TOKEN_LENGTH = 4096;
export const REQUIRED_CLAIMS = Object.freeze(["exp", "iat", "iss", "aud", "sub", "jti"]);
export const DEFAULT_LEEWAY_SECONDS = 30;

/** The reasons a pass is refused, the same words as the service's. */
export const REASONS = Object.freeze([
  "malformed",
  "bad_algorithm",
  "unknown_key",
  "keys_unavailable",
  "bad_signature",
  "wrong_type",
  "missing_claim",
  "wrong_issuer",
  "wrong_audience",
  "expired",
  "not_yet_valid",
]);

// Every kid the gate issues is an RFC 7638 SHA-256 thumbprint: 43 base64url characters.
const KID = /^[A-Za-z0-9_-]{43}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
// The range of a Python datetime, which the service reads `exp` into: years 1 to 9999.
const EARLIEST_EXP = -62135596800;
const LATEST_EXP = 253402300799;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A pass that breaks a rule; `reason` is one of REASONS, `detail` says more for people. */
export class InvalidToken extends Error {
  constructor(reason, detail = "") {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = "InvalidToken";
    this.reason = reason;
    this.detail = detail;
  }
}

function unbase64url(text) {
  if (!BASE64URL.test(text) || text.length % 4 === 1) {
    throw new TypeError("not base64url");
  }
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function jsonObject(bytes) {
  const value = JSON.parse(utf8.decode(bytes));
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
}

function own(object, name) {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

/**
 * The Ed25519 signing keys of a JWKS (or of a list of JWKs), by thumbprint.
 *
 * Entries that are not Ed25519 signing keys are skipped, and so are entries whose `kid` is not
 * their thumbprint: a kid only ever names the key it hashes. Throws TypeError when `document` is
 * neither a JWKS object nor a list.
 */
export async function keysFromJwks(document) {
  const entries = jwksEntries(document);
  const found = new Map();
  for (const entry of entries) {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) continue;
    const jwk = ed25519Jwk(entry);
    if (jwk === null) continue;
    let key;
    try {
      key = await importJWK(jwk, ALGORITHM);
    } catch {
      continue;
    }
    const kid = await calculateJwkThumbprint(jwk, "sha256");
    if ((Object.hasOwn(entry, "kid") ? entry.kid : kid) === kid) {
      found.set(kid, key);
    }
  }
  return found;
}

/** The entries of a JWKS document; TypeError when it is not one. */
export function jwksEntries(document) {
  const entries = Array.isArray(document) ? document : document !== null && typeof document === "object" ? own(document, "keys") : undefined;
  if (!Array.isArray(entries)) {
    throw new TypeError("a JWKS is an object with a 'keys' list");
  }
  return entries;
}

function ed25519Jwk(entry) {
  if (own(entry, "kty") !== "OKP" || own(entry, "crv") !== "Ed25519") return null;
  if ((Object.hasOwn(entry, "alg") ? entry.alg : ALGORITHM) !== ALGORITHM) return null;
  if ((Object.hasOwn(entry, "use") ? entry.use : "sig") !== "sig") return null;
  const x = own(entry, "x");
  if (typeof x !== "string" || x.length !== 43) return null;
  try {
    if (unbase64url(x).length !== 32) return null;
  } catch {
    return null;
  }
  return { kty: "OKP", crv: "Ed25519", x };
}

/**
 * The claims of `token` if it passes every rule; InvalidToken naming the first it breaks.
 *
 * The header is read without trusting it: `alg` must be EdDSA, `kid` is only ever looked up in
 * `keys` (never a path or URL), and `jku`, `jwk`, `x5u` and `x5c` are ignored, so nothing is
 * fetched. The header `typ` must be `typ` exactly. The claims `exp iat iss aud sub jti` are
 * required, `aud` must be `audience` alone, and `exp`, `nbf` and `iat` are held against `now`
 * (seconds since the epoch) with `leeway` seconds.
 */
export async function verifyToken(token, keys, { typ, audience, issuer, now, leeway = DEFAULT_LEEWAY_SECONDS }) {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
    throw new InvalidToken("malformed", `not a string of at most ${MAX_TOKEN_LENGTH} characters`);
  }
  const header = unverifiedHeader(token);
  if (own(header, "alg") !== ALGORITHM) {
    throw new InvalidToken("bad_algorithm", `alg must be ${ALGORITHM}`);
  }
  const kid = own(header, "kid");
  if (typeof kid !== "string" || !KID.test(kid)) {
    throw new InvalidToken("malformed", "kid is not a key thumbprint");
  }
  if (own(header, "typ") !== typ) {
    throw new InvalidToken("wrong_type", `typ must be ${typ}`);
  }
  const key = keys.get(kid);
  if (key === undefined) {
    throw new InvalidToken("unknown_key", `no published key ${kid}`);
  }
  const claims = await decode(token, key, { audience, issuer });
  checkTimes(claims, now, leeway);
  return claims;
}

function unverifiedHeader(token) {
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw new InvalidToken("malformed", "a token has three dot-separated parts");
  }
  let header = null;
  try {
    header = jsonObject(unbase64url(parts[0]));
  } catch {
    header = null;
  }
  if (header === null) {
    throw new InvalidToken("malformed", "the header is not a base64url JSON object");
  }
  return header;
}

async function decode(token, key, { audience, issuer }) {
  let payload;
  try {
    ({ payload } = await compactVerify(token, key, { algorithms: [ALGORITHM] }));
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) throw new InvalidToken("bad_signature");
    if (error instanceof errors.JOSEAlgNotAllowed) throw new InvalidToken("bad_algorithm", `alg must be ${ALGORITHM}`);
    throw new InvalidToken("malformed", String(error.message ?? error).slice(0, 200));
  }
  let claims = null;
  try {
    claims = jsonObject(payload);
  } catch {
    claims = null;
  }
  if (claims === null) {
    throw new InvalidToken("malformed", "the payload is not a JSON object");
  }
  for (const name of REQUIRED_CLAIMS) {
    if (own(claims, name) === undefined || claims[name] === null) {
      throw new InvalidToken("missing_claim", `no ${name} claim`);
    }
  }
  if (claims.iss !== issuer) {
    throw new InvalidToken("wrong_issuer", `iss must be ${issuer}`);
  }
  if (isEmpty(claims.aud)) {
    throw new InvalidToken("missing_claim", "no aud claim");
  }
  if (claims.aud !== audience) {
    throw new InvalidToken("wrong_audience", `aud must be ${audience}`);
  }
  for (const name of ["sub", "jti"]) {
    if (typeof claims[name] !== "string" || claims[name] === "") {
      throw new InvalidToken("malformed", `${name} must be a non-empty string`);
    }
  }
  return claims;
}

// What the service takes for an absent `aud`: a value Python holds false.
function isEmpty(value) {
  if (value === false || value === 0 || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

function checkTimes(claims, now, leeway) {
  if (numeric(claims, "exp") <= now - leeway) {
    throw new InvalidToken("expired");
  }
  if (numeric(claims, "iat") > now + leeway) {
    throw new InvalidToken("not_yet_valid", "issued in the future");
  }
  if (Object.hasOwn(claims, "nbf") && numeric(claims, "nbf") > now + leeway) {
    throw new InvalidToken("not_yet_valid");
  }
}

function numeric(claims, name) {
  const value = claims[name];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidToken("malformed", `${name} must be a number of seconds`);
  }
  return value;
}

/** What a valid pass says about its holder: `{ sub, tier, entitlements, session, expiresAt }`. */
export function passFromClaims(claims) {
  for (const name of ["tier", "ent", "sid"]) {
    if (!Object.hasOwn(claims, name)) {
      throw new InvalidToken("missing_claim", `no ${name} claim`);
    }
  }
  const { tier, ent, sid, exp } = claims;
  if (!Array.isArray(ent) || !ent.every((e) => typeof e === "string")) {
    throw new InvalidToken("malformed", "ent must be a list of strings");
  }
  if (typeof tier !== "string" || typeof sid !== "string") {
    throw new InvalidToken("malformed", "tier and sid must be strings");
  }
  if (exp < EARLIEST_EXP || exp > LATEST_EXP) {
    throw new InvalidToken("malformed", "exp is out of range");
  }
  return Object.freeze({
    sub: claims.sub,
    tier,
    entitlements: Object.freeze([...ent]),
    session: sid,
    expiresAt: new Date(exp * 1000),
  });
}
