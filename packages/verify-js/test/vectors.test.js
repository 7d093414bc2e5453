// The passes the service minted (written by tests/test_verify_js.py, named by SUPPORTGATE_VERIFY_VECTORS),
// each with the answer the service's own Python verifier gave: this package must give the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { InvalidToken, PassVerifier, REASONS } from "@supportgate/verify";

const file = process.env.SUPPORTGATE_VERIFY_VECTORS;
const document = file ? JSON.parse(readFileSync(file, "utf8")) : null;
const skip = document === null ? "SUPPORTGATE_VERIFY_VECTORS names no vectors (tests/test_verify_js.py writes them)" : false;
const quiet = { warn() {} };

function verifierFor(vector) {
  const options = { site: document.site, issuer: document.issuer, clock: () => vector.now * 1000, logger: quiet };
  const source = vector.source === "keys" ? { keys: document.jwks } : { jwksUrl: document.unreachable };
  return new PassVerifier(source, options);
}

test("the vectors hold a pass refused for each reason there is", { skip }, () => {
  const reasons = new Set(document.vectors.map((v) => v.expect.reason).filter(Boolean));
  assert.deepEqual([...reasons].sort(), [...REASONS].sort());
});

for (const vector of document?.vectors ?? []) {
  test(`${vector.name}: ${vector.expect.reason ?? "valid"}, as the service says`, async () => {
    const verifier = verifierFor(vector);
    if (vector.expect.reason) {
      await assert.rejects(verifier.verify(vector.token), (error) => {
        assert.ok(error instanceof InvalidToken, String(error));
        assert.equal(error.reason, vector.expect.reason, error.message);
        return true;
      });
      return;
    }
    const found = await verifier.verify(vector.token);
    assert.deepEqual({ ...found, entitlements: [...found.entitlements], expiresAt: found.expiresAt.toISOString() }, vector.expect.pass);
  });
}
