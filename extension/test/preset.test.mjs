import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { parsePreset, readPreset } from "../src/lib/preset.js";

describe("preset", () => {
  it("reads a branded build's gate and name", () => {
    assert.deepEqual(parsePreset({ gate: "https://gate.example/", name: " The Daily " }), { gate: "https://gate.example", name: "The Daily" });
    assert.deepEqual(parsePreset({ gate: "https://gate.example", name: null }), { gate: "https://gate.example", name: null });
    assert.equal(parsePreset({ gate: "javascript:alert(1)", name: "x" }), null);
    assert.equal(parsePreset({ name: "x" }), null);
    assert.equal(parsePreset(null), null);
  });

  it("treats a missing or broken file as no preset", async () => {
    const answer = (status, text) => async () => new Response(text, { status });
    assert.deepEqual(await readPreset("x", answer(200, '{"gate": "http://news.example", "name": "News"}')), {
      gate: "http://news.example",
      name: "News",
    });
    assert.equal(await readPreset("x", answer(404, "")), null);
    assert.equal(await readPreset("x", answer(200, "not json")), null);
    assert.equal(
      await readPreset("x", async () => {
        throw new TypeError("Failed to fetch");
      }),
      null,
    );
  });
});
