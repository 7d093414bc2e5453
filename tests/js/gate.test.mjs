// The pure parts of gate.js, loaded the way the gate serves them: without a DOM, gate.js only exports them.
// SUPPORTGATE_GATE_JS names a served (minified, substituted) copy; without it the source is used.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const GATE = "https://gate.example";
const file = process.env.SUPPORTGATE_GATE_JS || new URL("../../src/supportgate/static/gate/gate.js", import.meta.url);

function load() {
  const source = readFileSync(file, "utf8")
    .replace('"__SG_SITE__"', JSON.stringify("news"))
    .replace('"__SG_GATE__"', JSON.stringify(GATE));
  const module = { exports: {} };
  const context = { module };
  vm.runInNewContext(source, context);
  return { gate: module.exports, context };
}

const { gate, context } = load();
const signals = (control, network, cosmetic) => ({ control, network, cosmetic });

test("without a document gate.js exports its pure functions and installs nothing", () => {
  assert.deepEqual(Object.keys(gate).sort(), ["classify", "fragmentUrl", "locale", "reloads"]);
  assert.equal(context.supportgate, undefined);
});

test("a blocked bait with a working control is blocked", () => {
  assert.equal(gate.classify(signals("loaded", "blocked", "visible")), "blocked");
  assert.equal(gate.classify(signals("loaded", "loaded", "hidden")), "blocked");
  assert.equal(gate.classify(signals("loaded", "blocked", "hidden")), "blocked");
});

test("every bait loading is clear", () => {
  assert.equal(gate.classify(signals("loaded", "loaded", "visible")), "clear");
});

test("a failed or slow control is inconclusive whatever the baits say", () => {
  for (const control of ["failed", "timeout"]) {
    for (const network of ["loaded", "blocked", "timeout"]) {
      for (const cosmetic of ["visible", "hidden"]) {
        assert.equal(gate.classify(signals(control, network, cosmetic)), "inconclusive", [control, network, cosmetic]);
      }
    }
  }
});

test("a network bait that timed out with nothing hidden is inconclusive", () => {
  assert.equal(gate.classify(signals("loaded", "timeout", "visible")), "inconclusive");
});

test("language tags are sent to decide as ll or ll-CC, anything else is left out", () => {
  assert.equal(gate.locale("de-at"), "de-AT");
  assert.equal(gate.locale("EN_us"), "en-US");
  assert.equal(gate.locale("fr"), "fr");
  assert.equal(gate.locale("zh-Hant-TW"), "zh");
  assert.equal(gate.locale("fil"), null);
  assert.equal(gate.locale(""), null);
  assert.equal(gate.locale(undefined), null);
});

test("server mode reloads exactly when detection differs from what the server assumed", () => {
  assert.equal(gate.reloads("blocked", "unknown"), true);
  assert.equal(gate.reloads("clear", "blocked"), true);
  assert.equal(gate.reloads("clear", "unknown"), true);
  assert.equal(gate.reloads("blocked", "blocked"), false);
  assert.equal(gate.reloads("inconclusive", "inconclusive"), false);
});

test("the dialog is fetched only from the gate, with fragment=1 added", () => {
  assert.equal(
    gate.fragmentUrl(GATE + "/v1/sites/news/interstitial?lang=en"),
    GATE + "/v1/sites/news/interstitial?lang=en&fragment=1",
  );
  assert.equal(gate.fragmentUrl(GATE + "/v1/sites/news/interstitial"), GATE + "/v1/sites/news/interstitial?fragment=1");
  assert.equal(gate.fragmentUrl("https://gate.example.evil/v1/sites/news/interstitial"), null);
  assert.equal(gate.fragmentUrl("https://evil.example/?u=" + GATE + "/"), null);
  assert.equal(gate.fragmentUrl(null), null);
});
