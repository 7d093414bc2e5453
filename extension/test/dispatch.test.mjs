import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { classifySender, createDispatcher } from "../src/lib/dispatch.js";
import { Refusal } from "../src/lib/refusal.js";

const SELF = { extensionId: "abc", extensionUrl: "chrome-extension://abc/" };
const POPUP = { id: "abc", url: "chrome-extension://abc/popup/popup.html" };
const PAGE = { id: "abc", url: "http://news.example/demo/a", origin: "http://news.example", tab: { id: 7 }, frameId: 0 };

function dispatcher(calls = []) {
  return createDispatcher(
    {
      status: async () => ({ signedIn: false }),
      "page-pass": async (message, sender) => {
        calls.push(sender);
        return { site: "demo", pass: "p" };
      },
      "sign-out": async () => {
        throw new Refusal("signed-out", "Sign in first.", { reason: "x" });
      },
      "remove-site": async () => {
        throw new Error("boom");
      },
    },
    { ...SELF, onError: () => undefined },
  );
}

describe("dispatcher", () => {
  it("knows our pages from a content script in a tab's top frame", () => {
    assert.deepEqual(classifySender(POPUP, SELF), { kind: "extension" });
    assert.deepEqual(classifySender({ ...POPUP, tab: { id: 3 } }, SELF), { kind: "extension" });
    assert.deepEqual(classifySender(PAGE, SELF), { kind: "page", origin: "http://news.example", tabId: 7 });
    const firefoxPage = { ...PAGE, origin: undefined };
    assert.deepEqual(classifySender(firefoxPage, SELF), { kind: "page", origin: "http://news.example", tabId: 7 });
  });

  it("refuses other extensions, frames, non-web pages and a disagreeing origin", () => {
    for (const sender of [
      null,
      { ...POPUP, id: "other" },
      { ...PAGE, id: "other" },
      { ...PAGE, frameId: 3 },
      { ...PAGE, tab: undefined },
      { ...PAGE, url: "file:///x.html", origin: "null" },
      { ...PAGE, origin: "http://evil.example" },
      { id: "abc", url: "chrome-extension://other/popup.html" },
    ]) {
      assert.equal(classifySender(sender, SELF), null, JSON.stringify(sender));
    }
  });

  it("answers a known message from the right sender with the handler's result", async () => {
    assert.deepEqual(await dispatcher()({ type: "status" }, POPUP), { ok: true, signedIn: false });
  });

  it("hands the handler the origin the browser reported, never one from the message", async () => {
    const calls = [];
    const answer = await dispatcher(calls)({ type: "page-pass" }, PAGE);
    assert.deepEqual(answer, { ok: true, site: "demo", pass: "p" });
    assert.equal(calls[0].origin, "http://news.example");
    const forged = await dispatcher(calls)({ type: "page-pass", origin: "http://bank.example" }, PAGE);
    assert.equal(forged.ok, false);
  });

  it("refuses a page's content script every message meant for our pages", async () => {
    for (const type of ["status", "sign-out", "remove-site"]) {
      const answer = await dispatcher()({ type }, PAGE);
      assert.deepEqual(answer.error.code, "sender", type);
    }
  });

  it("refuses our pages the page messages and unknown senders everything", async () => {
    assert.equal((await dispatcher()({ type: "page-pass" }, POPUP)).error.code, "sender");
    assert.equal((await dispatcher()({ type: "status" }, { ...POPUP, id: "x" })).error.code, "sender");
  });

  it("passes a Refusal's code and details on, and hides other errors", async () => {
    assert.deepEqual(await dispatcher()({ type: "sign-out", gate: "https://g.example" }, POPUP), {
      ok: false,
      error: { code: "signed-out", message: "Sign in first.", reason: "x" },
    });
    const hidden = await dispatcher()({ type: "remove-site", origin: "https://a.example" }, POPUP);
    assert.equal(hidden.error.code, "internal");
    assert.ok(!hidden.error.message.includes("boom"));
  });
});
