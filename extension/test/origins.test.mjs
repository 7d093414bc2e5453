import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { hostPattern, isOrigin, normaliseGateUrl, originOf, parseGateMeta, parseGateScript } from "../src/lib/origins.js";

describe("origins", () => {
  it("takes the origin of http(s) URLs only", () => {
    assert.equal(originOf("https://News.Example:443/a?b#c"), "https://news.example");
    assert.equal(originOf("http://127.0.0.1:8000/demo/"), "http://127.0.0.1:8000");
    for (const bad of ["chrome://extensions", "file:///etc/passwd", "javascript:alert(1)", "https://u:p@x.example/", "nope"]) {
      assert.equal(originOf(bad), null, bad);
    }
  });

  it("knows a canonical origin from a URL", () => {
    assert.ok(isOrigin("https://news.example"));
    assert.ok(!isOrigin("https://news.example/"));
    assert.ok(!isOrigin("HTTPS://news.example"));
  });

  it("writes host permission patterns without a port", () => {
    assert.equal(hostPattern("http://127.0.0.1:8000"), "http://127.0.0.1/*");
    assert.equal(hostPattern("https://news.example"), "https://news.example/*");
  });

  it("normalises gate URLs and refuses queries, credentials and other schemes", () => {
    assert.equal(normaliseGateUrl("http://127.0.0.1:8000/"), "http://127.0.0.1:8000");
    assert.equal(normaliseGateUrl(" https://Gate.Example/sg/ "), "https://gate.example/sg");
    for (const bad of ["gate.example", "ftp://gate.example", "https://gate.example/?x=1", "https://a:b@gate.example", 7]) {
      assert.equal(normaliseGateUrl(bad), null, String(bad));
    }
  });

  it("reads the page's advertisement", () => {
    assert.deepEqual(parseGateMeta("site=demo; gate=http://news.example"), { site: "demo", gate: "http://news.example" });
    assert.deepEqual(parseGateMeta(" gate = https://gate.example/ ;site=news "), { site: "news", gate: "https://gate.example" });
    for (const bad of [null, "", "site=demo", "gate=https://g.example", "site=Bad Id; gate=https://g.example", "site=x; gate=javascript:1"]) {
      assert.equal(parseGateMeta(bad), null, String(bad));
    }
  });

  it("reads the gate and site from the address a page loads gate.js from", () => {
    assert.deepEqual(parseGateScript("http://news.example/v1/sites/demo/gate.js"), { site: "demo", gate: "http://news.example" });
    assert.deepEqual(parseGateScript("https://g.example/base/v1/sites/the-daily/gate.js?v=2"), {
      site: "the-daily",
      gate: "https://g.example/base",
    });
    for (const bad of [null, "", "http://news.example/gate.js", "http://news.example/v1/sites/Bad/gate.js", "data:text/javascript,1", "http://news.example/v1/sites/demo/gate.js/x"]) {
      assert.equal(parseGateScript(bad), null, String(bad));
    }
  });
});
