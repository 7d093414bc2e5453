import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NAME_RETRY_MS, NAME_TTL_MS, NAMES_LIMIT, nameFromAbout, nameKey, namesByKey, namesDue, siteName, withAnswer } from "../src/lib/names.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const GATE = "http://news.example";
const PAIR = { gate: GATE, site: "demo" };
const ABOUT = { id: "demo", name: "  The Daily\n Demo ", logo_url: "https://news.example/logo.png", support_url: "javascript:alert(1)" };

describe("site names", () => {
  it("reads an /about answer for the site asked about, and nothing else", () => {
    assert.deepEqual(nameFromAbout(ABOUT, "demo"), { name: "The Daily Demo", logoUrl: "https://news.example/logo.png", supportUrl: null });
    assert.equal(nameFromAbout(ABOUT, "other"), null, "an answer about another site");
    assert.equal(nameFromAbout({ id: "demo", name: "" }, "demo"), null);
    assert.equal(nameFromAbout({ id: "demo", name: "x".repeat(201) }, "demo"), null);
    assert.equal(nameFromAbout(null, "demo"), null);
  });

  it("asks for a missing name, again after a day, and after a failure only an hour later", () => {
    assert.deepEqual(namesDue({}, [PAIR, PAIR], NOW), [PAIR], "once per pair");
    const cached = withAnswer({}, PAIR, nameFromAbout(ABOUT, "demo"), NOW);
    assert.deepEqual(namesDue(cached, [PAIR], NOW + NAME_TTL_MS - 1), []);
    assert.deepEqual(namesDue(cached, [PAIR], NOW + NAME_TTL_MS), [PAIR]);
    const failed = withAnswer({}, PAIR, null, NOW);
    assert.deepEqual(namesDue(failed, [PAIR], NOW + NAME_RETRY_MS - 1), []);
    assert.deepEqual(namesDue(failed, [PAIR], NOW + NAME_RETRY_MS), [PAIR]);
  });

  it("keeps a known name when a later ask fails, and waits an hour before the next", () => {
    const cached = withAnswer({}, PAIR, nameFromAbout(ABOUT, "demo"), NOW);
    const later = NOW + NAME_TTL_MS;
    const failed = withAnswer(cached, PAIR, null, later);
    assert.equal(siteName(failed, { ...PAIR, origin: GATE }), "The Daily Demo");
    assert.deepEqual(namesDue(failed, [PAIR], later + 1), []);
    assert.deepEqual(namesDue(failed, [PAIR], later + NAME_RETRY_MS), [PAIR]);
  });

  it("falls back to the host, then the site id", () => {
    assert.equal(siteName({}, { ...PAIR, origin: "http://news.example:8080" }), "news.example:8080");
    assert.equal(siteName({}, PAIR), "demo");
    assert.equal(siteName({}, { site: "demo", origin: "http://daily.example" }), "daily.example", "a ledger entry from before gates were recorded");
  });

  it("lists the names by key and keeps at most the limit, newest first", () => {
    let cache = withAnswer({}, PAIR, nameFromAbout(ABOUT, "demo"), NOW);
    cache = withAnswer(cache, { gate: GATE, site: "gone" }, null, NOW);
    assert.deepEqual(namesByKey(cache), { [nameKey(GATE, "demo")]: "The Daily Demo" });
    for (let index = 0; index < NAMES_LIMIT + 5; index += 1) {
      cache = withAnswer(cache, { gate: GATE, site: `s${index}` }, { name: `Site ${index}` }, NOW + 1 + index);
    }
    assert.equal(Object.keys(cache).length, NAMES_LIMIT);
    assert.ok(!(nameKey(GATE, "demo") in cache), "the oldest went first");
    assert.ok(nameKey(GATE, `s${NAMES_LIMIT + 4}`) in cache);
  });
});
