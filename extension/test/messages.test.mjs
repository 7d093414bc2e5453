import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MESSAGES, validateMessage } from "../src/lib/messages.js";

const G = "http://news.example";

describe("message schemas", () => {
  it("accepts each well-formed message and keeps only its fields", () => {
    const good = [
      { type: "status" },
      { type: "refresh-names" },
      { type: "refresh-names", gate: "https://gate.example", site: "demo" },
      { type: "request-code", gate: G, email: "reader@example.com" },
      { type: "request-code", gate: G, email: "reader@example.com", site: "demo" },
      { type: "verify-code", gate: G, email: "reader@example.com", code: "123456" },
      { type: "verify-code", gate: G, email: "reader@example.com", code: "123456", endSessions: ["abc_1"] },
      { type: "verify-code", gate: G, email: "r@example.com", code: "123456", origin: "http://news.example", site: "demo" },
      { type: "activate", gate: G, code: "7KQ2-M9XD-4TPA-WB3R" },
      { type: "sign-out", gate: G },
      { type: "forget-gate", gate: "https://gate.example/base" },
      { type: "allow-site", origin: "http://news.example", site: "demo", gate: "http://news.example" },
      { type: "remove-site", origin: "https://news.example" },
      { type: "page-pass" },
    ];
    for (const message of good) {
      const checked = validateMessage(message);
      assert.ok(checked.ok, JSON.stringify(message));
      assert.equal(checked.type, message.type);
    }
  });

  it("refuses unknown types, unknown fields and malformed fields, naming what is wrong", () => {
    const bad = [
      [null, "object"],
      ["status", "object"],
      [{ type: "steal-tokens" }, "unknown message type"],
      [{ type: "__proto__" }, "unknown message type"],
      [{ type: "toString" }, "unknown message type"],
      [{ type: "status", extra: 1 }, "unknown field extra"],
      [{ type: "page-pass", origin: "https://bank.example" }, "unknown field origin"],
      [{ type: "verify-code", gate: G, email: "reader@example.com", code: "12345" }, "code"],
      [{ type: "verify-code", gate: G, email: "not-an-email", code: "123456" }, "email"],
      [{ type: "verify-code", email: "reader@example.com", code: "123456" }, "gate"],
      [{ type: "verify-code", gate: G, email: "r@example.com", code: "123456", origin: "news.example" }, "origin"],
      [{ type: "sign-out" }, "gate"],
      [{ type: "sign-out", gate: 42 }, "gate"],
      [{ type: "set-gate", gate: G }, "unknown message type"],
      [{ type: "allow-site", origin: "https://news.example/", site: "demo", gate: "https://g.example" }, "origin"],
      [{ type: "allow-site", origin: "https://news.example", site: "Demo!", gate: "https://g.example" }, "site"],
      [{ type: "allow-site", origin: "https://news.example", site: "demo", gate: "https://g.example/" }, "gate"],
      [{ type: "verify-code", gate: G, email: "r@example.com", code: "123456", endSessions: ["<script>"] }, "endSessions"],
    ];
    for (const [message, needle] of bad) {
      const checked = validateMessage(message);
      assert.equal(checked.ok, false, JSON.stringify(message));
      assert.equal(checked.error.code, "bad-message");
      assert.ok(checked.error.message.includes(needle), `${checked.error.message} ∌ ${needle}`);
    }
  });

  it("lets a web page's content script send only page messages", () => {
    const fromPage = Object.entries(MESSAGES)
      .filter(([, spec]) => spec.from === "page")
      .map(([type]) => type)
      .sort();
    assert.deepEqual(fromPage, ["open-signin", "page-pass"]);
    assert.deepEqual(MESSAGES["page-pass"].fields, {});
  });
});
