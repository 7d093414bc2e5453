import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  duePasses,
  isUsable,
  nextPassRefresh,
  passFromResponse,
  passRefreshAt,
  prunePasses,
  usableGrants,
} from "../src/lib/passes.js";

const NOW = Date.parse("2026-11-24T12:00:00Z");
const HOUR = 3_600_000;
const entry = (origin, lifetime, fetchedAt = NOW) => ({
  origin,
  site: "demo",
  pass: `pass-${origin}`,
  fetchedAt,
  expiresAt: fetchedAt + lifetime,
});

describe("pass cache", () => {
  it("reads the gate's answer", () => {
    const cached = passFromResponse(
      { pass: "eyJ", expires_at: "2026-11-24T13:00:00Z" },
      { origin: "http://news.example", site: "demo", gate: "http://gate.example", now: NOW },
    );
    assert.deepEqual(cached, {
      origin: "http://news.example",
      site: "demo",
      gate: "http://gate.example",
      pass: "eyJ",
      expiresAt: NOW + HOUR,
      fetchedAt: NOW,
    });
  });

  it("refuses an answer without a pass or an expiry", () => {
    assert.throws(() => passFromResponse({ expires_at: "2026-11-24T13:00:00Z" }, { origin: "o", site: "s", now: NOW }));
    assert.throws(() => passFromResponse({ pass: "eyJ", expires_at: "soon" }, { origin: "o", site: "s", now: NOW }));
  });

  it("fetches an hour-long pass again 12 minutes early, capped at 10", () => {
    assert.equal(passRefreshAt(entry("a", HOUR)), NOW + HOUR - 600_000);
  });

  it("fetches a 10-minute pass again 2 minutes early", () => {
    assert.equal(passRefreshAt(entry("a", 600_000)), NOW + 600_000 - 120_000);
  });

  it("fetches a very short pass at least 30 seconds early", () => {
    assert.equal(passRefreshAt(entry("a", 60_000)), NOW + 30_000);
  });

  it("hands out a pass only while it has more than a few seconds left", () => {
    const cached = entry("a", HOUR);
    assert.ok(isUsable(cached, NOW));
    assert.ok(!isUsable(cached, NOW + HOUR - 4_000));
    assert.ok(!isUsable(undefined, NOW));
  });

  it("lists allowed origins with a missing or due pass", () => {
    const cache = { "https://a.example": entry("https://a.example", HOUR), "https://b.example": entry("https://b.example", HOUR) };
    const origins = ["https://a.example", "https://b.example", "https://c.example"];
    assert.deepEqual(duePasses(cache, origins, NOW), ["https://c.example"]);
    assert.deepEqual(duePasses(cache, origins, NOW + HOUR - 600_000), origins);
  });

  it("drops passes of removed sites and expired passes", () => {
    const cache = {
      "https://a.example": entry("https://a.example", HOUR),
      "https://b.example": entry("https://b.example", HOUR),
      "https://old.example": entry("https://old.example", 60_000, NOW - HOUR),
    };
    assert.deepEqual(Object.keys(prunePasses(cache, ["https://a.example", "https://old.example"], NOW)), ["https://a.example"]);
  });

  it("gives the usable passes as header grants and the next refresh time", () => {
    const cache = {
      "https://a.example": entry("https://a.example", HOUR),
      "https://b.example": entry("https://b.example", 600_000),
    };
    assert.deepEqual(usableGrants(cache, NOW), [
      { origin: "https://a.example", pass: "pass-https://a.example" },
      { origin: "https://b.example", pass: "pass-https://b.example" },
    ]);
    assert.deepEqual(usableGrants(cache, NOW + 700_000), [{ origin: "https://a.example", pass: "pass-https://a.example" }]);
    assert.equal(nextPassRefresh(cache), NOW + 480_000);
    assert.equal(nextPassRefresh({}), null);
  });
});
