import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LEDGER_LIMIT, ledgerEntries, recordDelivery } from "../src/lib/ledger.js";

const NOW = Date.parse("2026-11-24T12:00:00Z");

describe("ledger", () => {
  it("records the first and the last delivery to a site", () => {
    let ledger = recordDelivery({}, { origin: "https://a.example", site: "a", at: NOW });
    ledger = recordDelivery(ledger, { origin: "https://a.example", site: "a", at: NOW + 60_000 });
    assert.deepEqual(ledger["https://a.example"], { origin: "https://a.example", site: "a", firstAt: NOW, lastAt: NOW + 60_000 });
  });

  it("records the gate a pass came from", () => {
    const gate = "https://g.example";
    let ledger = recordDelivery({}, { origin: "https://a.example", site: "a", gate, at: NOW });
    assert.deepEqual(ledger["https://a.example"], { origin: "https://a.example", site: "a", gate, firstAt: NOW, lastAt: NOW });
    ledger = recordDelivery(ledger, { origin: "https://a.example", site: "a", gate: "https://other.example", at: NOW + 1 });
    assert.equal(ledger["https://a.example"].gate, "https://other.example", "a pass from another gate is recorded at once");
  });

  it("changes nothing for a delivery seconds after the last", () => {
    const ledger = recordDelivery({}, { origin: "https://a.example", site: "a", at: NOW });
    assert.equal(recordDelivery(ledger, { origin: "https://a.example", site: "a", at: NOW + 2_000 }), ledger);
  });

  it("lists the most recent delivery first", () => {
    let ledger = {};
    ledger = recordDelivery(ledger, { origin: "https://a.example", site: "a", at: NOW });
    ledger = recordDelivery(ledger, { origin: "https://b.example", site: "b", at: NOW + 1 });
    assert.deepEqual(
      ledgerEntries(ledger).map((e) => e.origin),
      ["https://b.example", "https://a.example"],
    );
  });

  it("keeps at most LEDGER_LIMIT sites, dropping the longest unused", () => {
    let ledger = {};
    for (let i = 0; i <= LEDGER_LIMIT; i++) {
      ledger = recordDelivery(ledger, { origin: `https://s${i}.example`, site: `s${i}`, at: NOW + i });
    }
    assert.equal(Object.keys(ledger).length, LEDGER_LIMIT);
    assert.ok(!("https://s0.example" in ledger));
    assert.ok(`https://s${LEDGER_LIMIT}.example` in ledger);
  });
});
