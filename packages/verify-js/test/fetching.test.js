// Fetching the JWKS over real HTTP (a node:http server on 127.0.0.1): when, how often, and what
// is kept when the gate cannot be reached. A clock the tests move stands in for time passing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from "jose";

import { InvalidToken, PassVerifier } from "@supportgate/verify";

const SITE = "news";
const ISSUER = "https://gate.example";
const START = 1_800_000_000;
const VERSION = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;

async function keyPair() {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, alg: "EdDSA", use: "sig" }, kid };
}

async function sign(pair, at, header = {}) {
  const claims = { iss: ISSUER, aud: SITE, sub: "p", sid: "s", jti: `j${Math.random()}`, iat: at, exp: at + 3600, tier: "t", ent: [] };
  return new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", typ: "sg-pass+jwt", kid: pair.kid, ...header }).sign(pair.privateKey);
}

/** A JWKS server that counts requests; `answer` decides each reply. */
async function jwksServer(answer) {
  const requests = [];
  const server = createServer((request, response) => {
    requests.push({ path: request.url, headers: request.headers });
    const { status = 200, body = "", headers = {} } = answer(request);
    response.writeHead(status, { "Content-Type": "application/json", ...headers });
    response.end(typeof body === "string" ? body : JSON.stringify(body));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    base: `http://127.0.0.1:${port}`,
    requests,
    fetches: () => requests.filter((r) => r.path === "/.well-known/jwks.json").length,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function harness(url, options = {}) {
  const clock = { now: START };
  const warnings = [];
  const verifier = new PassVerifier(
    { jwksUrl: url },
    { site: SITE, issuer: ISSUER, clock: () => clock.now * 1000, cacheSize: 0, logger: { warn: (m) => warnings.push(m) }, ...options },
  );
  return { verifier, clock, warnings };
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

test("the JWKS is fetched once, with a plain GET, and kept for its max-age", async (t) => {
  const pair = await keyPair();
  const gate = await jwksServer(() => ({ body: { keys: [pair.jwk] }, headers: { "Cache-Control": "public, max-age=120" } }));
  t.after(gate.close);
  const { verifier, clock } = harness(gate.url);
  const token = await sign(pair, START);
  await verifier.verify(token);
  await verifier.verify(token);
  clock.now = START + 119;
  await verifier.verify(token);
  assert.equal(gate.fetches(), 1);
  assert.equal(gate.requests[0].headers["user-agent"], `supportgate-verify-js/${VERSION}`);
  assert.match(gate.requests[0].headers.accept, /application\/jwk-set\+json/);
  clock.now = START + 120;
  await verifier.verify(token);
  assert.equal(gate.fetches(), 2);
});

test("a max-age under a minute, or no-store, still keeps the keys a minute", async (t) => {
  for (const cacheControl of ["max-age=5", "no-store"]) {
    const pair = await keyPair();
    const gate = await jwksServer(() => ({ body: { keys: [pair.jwk] }, headers: { "Cache-Control": cacheControl } }));
    t.after(gate.close);
    const { verifier, clock } = harness(gate.url);
    const token = await sign(pair, START);
    await verifier.verify(token);
    clock.now = START + 59;
    await verifier.verify(token);
    assert.equal(gate.fetches(), 1, cacheControl);
    clock.now = START + 60;
    await verifier.verify(token);
    assert.equal(gate.fetches(), 2, cacheControl);
  }
});

test("without Cache-Control the keys are kept five minutes", async (t) => {
  const pair = await keyPair();
  const gate = await jwksServer(() => ({ body: { keys: [pair.jwk] } }));
  t.after(gate.close);
  const { verifier, clock } = harness(gate.url);
  const token = await sign(pair, START);
  await verifier.verify(token);
  clock.now = START + 299;
  await verifier.verify(token);
  assert.equal(gate.fetches(), 1);
  clock.now = START + 300;
  await verifier.verify(token);
  assert.equal(gate.fetches(), 2);
});

test("an unknown kid fetches again, at most once a minute; a key published since then verifies", async (t) => {
  const old = await keyPair();
  const rotated = await keyPair();
  let published = [old.jwk];
  const gate = await jwksServer(() => ({ body: { keys: published }, headers: { "Cache-Control": "max-age=300" } }));
  t.after(gate.close);
  const { verifier, clock } = harness(gate.url);
  await verifier.verify(await sign(old, START));
  const fresh = await sign(rotated, START);
  clock.now = START + 30;
  assert.equal(await reason(verifier.verify(fresh)), "unknown_key");
  assert.equal(gate.fetches(), 1, "the first fetch was 30 s ago");
  clock.now = START + 60;
  assert.equal(await reason(verifier.verify(fresh)), "unknown_key");
  assert.equal(gate.fetches(), 2, "a minute on, the unknown kid fetched again");
  published = [old.jwk, rotated.jwk];
  clock.now = START + 61;
  assert.equal(await reason(verifier.verify(await sign(rotated, START))), "unknown_key");
  for (let i = 0; i < 5; i += 1) {
    assert.equal(await reason(verifier.verify(await sign(await keyPair(), START))), "unknown_key");
  }
  assert.equal(gate.fetches(), 2, "made-up kids do not make the verifier hammer the gate");
  clock.now = START + 120;
  assert.equal((await verifier.verify(fresh)).tier, "t");
  assert.equal(gate.fetches(), 3);
});

test("the service's rotation vector: its new key arrives with the refetch an unknown kid asks for", async (t) => {
  const file = process.env.SUPPORTGATE_VERIFY_VECTORS;
  if (!file) {
    t.skip("SUPPORTGATE_VERIFY_VECTORS names no vectors (tests/test_verify_js.py writes them)");
    return;
  }
  const { jwks, rotation, issuer, site } = JSON.parse(readFileSync(file, "utf8"));
  let published = jwks;
  const gate = await jwksServer(() => ({ body: published, headers: { "Cache-Control": "max-age=300" } }));
  t.after(gate.close);
  const clock = { now: rotation.now };
  const verifier = new PassVerifier({ jwksUrl: gate.url }, { site, issuer, clock: () => clock.now * 1000, logger: null });
  assert.equal(await reason(verifier.verify(rotation.token)), "unknown_key");
  published = rotation.jwks;
  clock.now += 60;
  assert.equal((await verifier.verify(rotation.token)).tier, "supporter");
  assert.equal(gate.fetches(), 2);
});

test("when a fetch fails the keys already held are kept, and the failure is told to the logger", async (t) => {
  const pair = await keyPair();
  let failing = false;
  const gate = await jwksServer(() =>
    failing ? { status: 503, body: "down" } : { body: { keys: [pair.jwk] }, headers: { "Cache-Control": "max-age=60" } },
  );
  t.after(gate.close);
  const { verifier, clock, warnings } = harness(gate.url);
  const token = await sign(pair, START);
  await verifier.verify(token);
  failing = true;
  clock.now = START + 61;
  assert.equal((await verifier.verify(token)).tier, "t");
  assert.equal(gate.fetches(), 2);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /503/);
  clock.now = START + 90;
  await verifier.verify(token);
  assert.equal(gate.fetches(), 2, "not again within the minute");
});

test("with no keys ever fetched the answer is keys_unavailable, for an unreachable, failing or bad JWKS", async (t) => {
  const answers = [
    { status: 500, body: "oops" },
    { body: "not json" },
    { body: { keys: "none" } },
    { body: JSON.stringify({ keys: [], pad: "x".repeat(256 * 1024) }) },
  ];
  const pair = await keyPair();
  const token = await sign(pair, START);
  for (const answer of answers) {
    const gate = await jwksServer(() => answer);
    t.after(gate.close);
    const { verifier, warnings } = harness(gate.url);
    assert.equal(await reason(verifier.verify(token)), "keys_unavailable", JSON.stringify(answer).slice(0, 80));
    assert.equal(warnings.length, 1);
  }
  const gate = await jwksServer(() => ({}));
  await gate.close();
  const { verifier } = harness(gate.url);
  assert.equal(await reason(verifier.verify(token)), "keys_unavailable");
});

test("a slow JWKS is given up after timeoutMs", async (t) => {
  const pair = await keyPair();
  const server = createServer(() => {});
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const { verifier } = harness(`http://127.0.0.1:${server.address().port}/jwks`, { timeoutMs: 200 });
  const started = Date.now();
  assert.equal(await reason(verifier.verify(await sign(pair, START))), "keys_unavailable");
  assert.ok(Date.now() - started < 3000);
});

test("jku, jwk, x5u and x5c in a header are never fetched nor used", async (t) => {
  const published = await keyPair();
  const attacker = await keyPair();
  const gate = await jwksServer((request) =>
    request.url === "/.well-known/jwks.json" ? { body: { keys: [published.jwk] } } : { body: { keys: [attacker.jwk] } },
  );
  t.after(gate.close);
  const { verifier } = harness(gate.url);
  const forged = await sign(attacker, START, {
    jku: `${gate.base}/attacker/jwks.json`,
    x5u: `${gate.base}/attacker/cert.pem`,
    jwk: attacker.jwk,
    x5c: ["MIIB"],
  });
  assert.equal(await reason(verifier.verify(forged)), "unknown_key");
  assert.deepEqual(
    gate.requests.map((r) => r.path),
    ["/.well-known/jwks.json"],
  );
});

test("passes checked at once share one fetch", async (t) => {
  const pair = await keyPair();
  const gate = await jwksServer(() => ({ body: { keys: [pair.jwk] } }));
  t.after(gate.close);
  const { verifier } = harness(gate.url);
  const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => sign(pair, START)));
  const found = await Promise.all(tokens.map((token) => verifier.verify(token)));
  assert.equal(found.length, 5);
  assert.equal(gate.fetches(), 1);
});
