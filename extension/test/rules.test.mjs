import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PASS_HEADER, RESOURCE_TYPES, buildPassRules, sameRules, urlFilterFor } from "../src/lib/rules.js";

/**
 * declarativeNetRequest's urlFilter, for the filters the builder writes: `|` then a literal with
 * none of `*`, `^` or `|`, matched at the start of the URL, case-insensitively (the default).
 */
function urlFilterMatches(filter, url) {
  assert.match(filter, /^\|[^*^|]+$/, "the builder writes only start-anchored literals");
  return url.toLowerCase().startsWith(filter.slice(1).toLowerCase());
}

describe("header rules", () => {
  const [rule] = buildPassRules([{ origin: "https://news.example", pass: "eyJ.pass" }]);

  it("sets the Supportgate-Pass header to the pass", () => {
    assert.deepEqual(rule.action, {
      type: "modifyHeaders",
      requestHeaders: [{ header: PASS_HEADER, operation: "set", value: "eyJ.pass" }],
    });
    assert.equal(PASS_HEADER, "Supportgate-Pass");
  });

  it("covers top-level documents and every subresource type", () => {
    assert.ok(rule.condition.resourceTypes.includes("main_frame"));
    assert.ok(rule.condition.resourceTypes.includes("xmlhttprequest"));
    assert.deepEqual(rule.condition.resourceTypes, [...RESOURCE_TYPES]);
  });

  it("matches the site's own origin, on any path", () => {
    for (const url of ["https://news.example/", "https://news.example/2024/article?x=1", "HTTPS://NEWS.EXAMPLE/a"]) {
      assert.ok(urlFilterMatches(rule.condition.urlFilter, url), url);
    }
  });

  it("matches no subdomain, lookalike, other scheme, other port or userinfo trick", () => {
    for (const url of [
      "https://sub.news.example/",
      "https://www.news.example/",
      "https://news.example.evil.com/",
      "https://news.examplee/",
      "https://evilnews.example/",
      "http://news.example/",
      "https://news.example:8443/",
      "https://news.example@evil.com/",
      "https://evil.com/https://news.example/",
      "https://evil.com/?u=https://news.example/",
    ]) {
      assert.ok(!urlFilterMatches(rule.condition.urlFilter, url), url);
    }
  });

  it("keeps the port of a non-default origin", () => {
    const filter = urlFilterFor("http://127.0.0.1:8000");
    assert.ok(urlFilterMatches(filter, "http://127.0.0.1:8000/demo/"));
    assert.ok(!urlFilterMatches(filter, "http://127.0.0.1:8001/demo/"));
    assert.ok(!urlFilterMatches(filter, "http://127.0.0.1/demo/"));
  });

  it("refuses anything that is not a canonical origin", () => {
    for (const bad of ["news.example", "https://news.example/", "https://news.example/path", "ftp://x.example", "*://x/*"]) {
      assert.throws(() => urlFilterFor(bad), TypeError, bad);
    }
  });

  it("numbers rules 1..n in origin order, whatever order the passes come in", () => {
    const rules = buildPassRules([
      { origin: "https://b.example", pass: "b" },
      { origin: "https://a.example", pass: "a" },
    ]);
    assert.deepEqual(
      rules.map((r) => [r.id, r.condition.urlFilter, r.action.requestHeaders[0].value]),
      [
        [1, "|https://a.example/", "a"],
        [2, "|https://b.example/", "b"],
      ],
    );
  });

  it("tells equal rule sets from changed ones, ignoring fields the browser adds", () => {
    const rules = buildPassRules([{ origin: "https://a.example", pass: "a" }]);
    const fromBrowser = rules.map((r) => ({ ...r, condition: { ...r.condition, isUrlFilterCaseSensitive: false } }));
    assert.ok(sameRules(fromBrowser, rules));
    assert.ok(!sameRules(rules, buildPassRules([{ origin: "https://a.example", pass: "new" }])));
    assert.ok(!sameRules(rules, []));
  });
});
