/**
 * DPoP proofs (RFC 9449): the device's key pair, a proof for one request, and a key's RFC 7638
 * thumbprint. Pure WebCrypto, so it runs in the service worker, the event page and node's tests.
 *
 * A proof is a compact JWS: header `{typ: "dpop+jwt", alg: "ES256", jwk}` (the public key's
 * members only), payload `{jti, htm, htu, iat}` plus `ath` (the access token's SHA-256) when an
 * access token is presented with it, signed with the device's P-256 key. WebCrypto's ECDSA
 * signature is already the raw `r || s` that JWS wants.
 */

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING = { name: "ECDSA", hash: "SHA-256" };
/** The members RFC 7638 hashes, per key type, in their lexicographic order. */
const REQUIRED_MEMBERS = Object.freeze({ EC: ["crv", "kty", "x", "y"], RSA: ["e", "kty", "n"], OKP: ["crv", "kty", "x"] });

/** Base64url without padding, of bytes or of a string's UTF-8. */
export function base64url(input) {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : new Uint8Array(input);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function sha256(text) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * A new device key: `{privateKey, publicJwk}`. The private key cannot be exported (WebCrypto
 * keeps it; IndexedDB can store the CryptoKey without ever seeing its bytes).
 */
export async function generateDeviceKey() {
  const pair = await crypto.subtle.generateKey(ALGORITHM, false, ["sign", "verify"]);
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty, crv, x, y } };
}

/** The base64url SHA-256 of an access token, as a proof's `ath` carries it. */
export const accessTokenHash = (accessToken) => sha256(accessToken);

/** A random `jti`: 16 random bytes, base64url. */
export function randomJti() {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * A DPoP proof for one request.
 *
 * @param {{key: {privateKey: CryptoKey, publicJwk: object}, htm: string, htu: string,
 *          accessToken?: string, now?: number, jti?: string}} request
 *   `htu` is the gate's base URL plus the path, without a query; `now` is in milliseconds.
 */
export async function createProof({ key, htm, htu, accessToken, now = Date.now(), jti = randomJti() }) {
  const { kty, crv, x, y } = key.publicJwk;
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } };
  const payload = { jti, htm, htu: htu.split(/[?#]/)[0], iat: Math.floor(now / 1000) };
  if (accessToken !== undefined && accessToken !== null) payload.ath = await accessTokenHash(accessToken);
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = await crypto.subtle.sign(SIGNING, key.privateKey, new TextEncoder().encode(signingInput));
  return `${signingInput}.${base64url(signature)}`;
}

/** A public JWK's RFC 7638 thumbprint (SHA-256, base64url): what a bound session's `cnf.jkt` holds. */
export async function jwkThumbprint(jwk) {
  const members = REQUIRED_MEMBERS[jwk?.kty];
  if (!members) throw new TypeError(`no thumbprint for key type ${jwk?.kty}`);
  const canonical = {};
  for (const name of members) {
    if (typeof jwk[name] !== "string") throw new TypeError(`the key has no ${name}`);
    canonical[name] = jwk[name];
  }
  return sha256(JSON.stringify(canonical));
}
