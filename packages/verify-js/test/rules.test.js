// The verifier's own rules, without the service: its arguments, the JWKS it accepts, Cache-Control.
import { test } from "node:test";
import assert from "node:assert/strict";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from "jose";

import { InvalidToken, PassVerifier, keysFromJwks } from "@supportgate/verify";
import { maxAgeOf } from "../src/verifier.js";

const SITE = "news";
const ISSUER = "https://gate.example";
const NOW = 1_800_000_000;

async function keyPair() {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, alg: "EdDSA", use: "sig" }, kid };
}

function claims(extra = {}) {
  return { iss: ISSUER, aud: SITE, sub: "p", sid: "s", jti: "j", iat: NOW, exp: NOW + 600, tier: "t", ent: ["adblock_ok"], ...extra };
}

async function sign(pair, header = {}, extra = {}) {
  return new SignJWT(claims(extra)).setProtectedHeader({ alg: "EdDSA", typ: "sg-pass+jwt", kid: pair.kid, ...header }).sign(pair.privateKey);
}

async function reason(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof InvalidToken, String(error));
    return error.reason;
  }
  assert.fail("the pass was accepted");
}

test("the verifier takes either jwksUrl or keys, an http(s) URL, a site and an issuer", () => {
  const options = { site: SITE, issuer: ISSUER };
  assert.throws(() => new PassVerifier({}, options), TypeError);
  assert.throws(() => new PassVerifier({ jwksUrl: "https://g/", keys: [] }, options), TypeError);
  assert.throws(() => new PassVerifier({ jwksUrl: "file:///etc/passwd" }, options), /http\(s\)/);
  assert.throws(() => new PassVerifier({ jwksUrl: "not a url" }, options), /http\(s\)/);
  assert.throws(() => new PassVerifier({ keys: { nokeys: 1 } }, options), /keys/);
  assert.throws(() => new PassVerifier({ keys: [] }, { site: SITE }), /issuer/);
  assert.throws(() => new PassVerifier({ keys: [] }, { ...options, cacheSize: -1 }), /cacheSize/);
});

test("a JWKS entry counts only as an Ed25519 signing key whose kid is its thumbprint", async () => {
  const good = await keyPair();
  const other = await keyPair();
  const found = await keysFromJwks({
    keys: [
      good.jwk,
      { ...other.jwk, kid: good.kid },
      { ...other.jwk, use: "enc" },
      { ...other.jwk, alg: "ES256" },
      { ...other.jwk, crv: "Ed448" },
      { kty: "RSA", n: "xx", e: "AQAB" },
      { ...other.jwk, x: other.jwk.x.slice(1) },
      "not a key",
      null,
    ],
  });
  assert.deepEqual([...found.keys()], [good.kid]);
  const bare = await keysFromJwks([{ kty: "OKP", crv: "Ed25519", x: other.jwk.x }]);
  assert.deepEqual([...bare.keys()], [other.kid]);
});

test("a pass signed by a published key verifies; the header's own key and URLs are never used", async () => {
  const good = await keyPair();
  const attacker = await keyPair();
  const verifier = new PassVerifier({ keys: { keys: [good.jwk] } }, { site: SITE, issuer: ISSUER, clock: () => NOW * 1000 });
  const found = await verifier.verify(await sign(good));
  assert.equal(found.tier, "t");
  assert.deepEqual(found.entitlements, ["adblock_ok"]);
  assert.equal(found.expiresAt.getTime(), (NOW + 600) * 1000);
  const embedded = await sign(attacker, { jwk: attacker.jwk, jku: "http://127.0.0.1:9/jwks", x5u: "http://127.0.0.1:9/x" });
  assert.equal(await reason(verifier.verify(embedded)), "unknown_key");
  const lying = await sign(attacker, { kid: good.kid });
  assert.equal(await reason(verifier.verify(lying)), "bad_signature");
});

test("the leeway is 30 seconds unless told otherwise", async () => {
  const good = await keyPair();
  const at = (seconds, leeway) =>
    new PassVerifier({ keys: [good.jwk] }, { site: SITE, issuer: ISSUER, clock: () => seconds * 1000, leeway, cacheSize: 0 });
  const token = await sign(good);
  assert.ok(await at(NOW + 629).verify(token));
  assert.equal(await reason(at(NOW + 630).verify(token)), "expired");
  assert.equal(await reason(at(NOW + 601, 0).verify(token)), "expired");
  assert.equal(await reason(at(NOW - 31).verify(token)), "not_yet_valid");
});

test("a valid pass is remembered until it expires, then refused", async () => {
  const good = await keyPair();
  let now = NOW;
  const verifier = new PassVerifier({ keys: [good.jwk] }, { site: SITE, issuer: ISSUER, clock: () => now * 1000 });
  const token = await sign(good);
  const first = await verifier.verify(token);
  assert.equal(await verifier.verify(token), first);
  now = NOW + 600;
  assert.notEqual(await verifier.verify(token), first, "an expired entry is verified again, with the leeway");
  now = NOW + 630;
  assert.equal(await reason(verifier.verify(token)), "expired");
});

test("Cache-Control is read as the service reads it", () => {
  assert.equal(maxAgeOf("public, max-age=120"), 120);
  assert.equal(maxAgeOf("MAX-AGE=7"), 7);
  assert.equal(maxAgeOf("no-store"), 0);
  assert.equal(maxAgeOf("no-cache, max-age=600"), 0);
  assert.equal(maxAgeOf("max-age=soon"), 300);
  assert.equal(maxAgeOf(""), 300);
});
