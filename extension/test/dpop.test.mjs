import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { accessTokenHash, base64url, createProof, generateDeviceKey, jwkThumbprint } from "../src/lib/dpop.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const HTU = "http://news.example/v1/auth/refresh";

function fromBase64url(text) {
  return Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64");
}

function decode(proof) {
  const [header, payload, signature] = proof.split(".");
  return {
    header: JSON.parse(fromBase64url(header).toString()),
    payload: JSON.parse(fromBase64url(payload).toString()),
    signature: fromBase64url(signature),
    signingInput: `${header}.${payload}`,
  };
}

async function verifies(proof, jwk) {
  const { signature, signingInput } = decode(proof);
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, new TextEncoder().encode(signingInput));
}

describe("DPoP proofs", () => {
  it("makes a device key whose private half cannot be exported", async () => {
    const key = await generateDeviceKey();
    assert.equal(key.privateKey.extractable, false);
    assert.equal(key.privateKey.type, "private");
    assert.deepEqual(Object.keys(key.publicJwk).sort(), ["crv", "kty", "x", "y"]);
    assert.equal(key.publicJwk.kty, "EC");
    assert.equal(key.publicJwk.crv, "P-256");
    await assert.rejects(crypto.subtle.exportKey("jwk", key.privateKey));
  });

  it("builds a proof the public key verifies, with the header and claims of the contract", async () => {
    const key = await generateDeviceKey();
    const proof = await createProof({ key, htm: "POST", htu: HTU, now: NOW + 999, jti: "jti-0123456789abcdef" });
    const { header, payload, signature } = decode(proof);
    assert.deepEqual(header, { typ: "dpop+jwt", alg: "ES256", jwk: key.publicJwk });
    assert.deepEqual(payload, { jti: "jti-0123456789abcdef", htm: "POST", htu: HTU, iat: NOW / 1000 });
    assert.equal(signature.length, 64, "a raw r||s signature");
    assert.ok(!proof.includes("="), "base64url without padding");
    assert.ok(await verifies(proof, key.publicJwk));
    const other = await generateDeviceKey();
    assert.equal(await verifies(proof, other.publicJwk), false);
    const tampered = proof.replace(/^[^.]+\.[^.]+/, (input) => `${input.split(".")[0]}.${base64url(JSON.stringify({ ...payload, htm: "GET" }))}`);
    assert.equal(await verifies(tampered, key.publicJwk), false);
  });

  it("gives each proof a fresh random jti and leaves the query off htu", async () => {
    const key = await generateDeviceKey();
    const first = decode(await createProof({ key, htm: "GET", htu: "https://g.example/base/v1/me?x=1#y", now: NOW })).payload;
    const second = decode(await createProof({ key, htm: "GET", htu: "https://g.example/base/v1/me", now: NOW })).payload;
    assert.notEqual(first.jti, second.jti);
    assert.ok(fromBase64url(first.jti).length >= 16);
    assert.equal(first.htu, "https://g.example/base/v1/me");
    assert.equal("ath" in first, false, "no ath without an access token");
  });

  it("carries the access token's hash as ath (RFC 9449's example)", async () => {
    const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    assert.equal(await accessTokenHash(token), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
    const key = await generateDeviceKey();
    const { payload } = decode(await createProof({ key, htm: "GET", htu: HTU, accessToken: token, now: NOW }));
    assert.equal(payload.ath, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
  });

  it("computes RFC 7638 thumbprints: the RFC's RSA example and a P-256 key checked with Python's cryptography", async () => {
    const rsa = {
      kty: "RSA",
      n:
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs" +
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr" +
        "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      e: "AQAB",
      alg: "RS256",
      kid: "2011-04-29",
    };
    assert.equal(await jwkThumbprint(rsa), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    // ec.derive_private_key(0x5EC0DE5EC0DE5EC0DE, SECP256R1()); thumbprint from hashlib over the sorted JSON.
    const ec = {
      kty: "EC",
      crv: "P-256",
      x: "Y46RUC2DddD-GZNnaUCzmReNlvlXc8rBrayE666WYGI",
      y: "epVDgasKKHkcoZpm0FOZbkmahiB6939b2BjJwpuZKxk",
      d: "never-hashed",
    };
    assert.equal(await jwkThumbprint(ec), "bkt85bAHuJ_rAjZM-BxVMMPh7FmVAdFIpxORBRd2Eq4");
    await assert.rejects(jwkThumbprint({ kty: "EC", crv: "P-256", x: "only-x" }), /no y/);
    await assert.rejects(jwkThumbprint({ kty: "oct", k: "secret" }), /key type oct/);
  });
});
