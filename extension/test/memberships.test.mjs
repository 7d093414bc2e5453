import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  activeSites,
  allSites,
  allowSite,
  emptyMembership,
  keptPasses,
  membershipOf,
  migrateLegacy,
  neededOrigins,
  passForOrigin,
  passGrants,
  removeMembership,
  removeSite,
  withSession,
} from "../src/lib/memberships.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const NEWS = "http://news.example";
const DAILY = "http://daily.example";
const SESSION = (gate) => ({ gate, accessToken: `a-${gate}`, refreshToken: `r-${gate}`, tokenType: "DPoP", account: {} });
const PASS = (origin, gate, site = "demo", pass = `pass-for-${origin}-from-${gate}`) => ({
  origin,
  site,
  gate,
  pass,
  fetchedAt: NOW - 1000,
  expiresAt: NOW + 3_600_000,
});

/** Two signed-in memberships, each with its own site. */
function two() {
  let all = withSession({}, NEWS, SESSION(NEWS));
  all = withSession(all, DAILY, SESSION(DAILY));
  all = allowSite(all, { gate: NEWS, origin: NEWS, site: "demo", now: NOW });
  return allowSite(all, { gate: DAILY, origin: DAILY, site: "demo", now: NOW });
}

describe("memberships", () => {
  it("adds a membership per gate at sign-in and replaces its session at the next", () => {
    let all = withSession({}, NEWS, SESSION(NEWS));
    assert.deepEqual(Object.keys(all), [NEWS]);
    assert.equal(all[NEWS].session.refreshToken, `r-${NEWS}`);
    all = allowSite(all, { gate: NEWS, origin: NEWS, site: "demo", now: NOW });
    const before = structuredClone(all);
    const again = withSession(all, NEWS, { ...SESSION(NEWS), refreshToken: "r-2" });
    assert.equal(again[NEWS].session.refreshToken, "r-2");
    assert.deepEqual(again[NEWS].sites, all[NEWS].sites, "a new sign-in keeps the allowed sites");
    assert.deepEqual(all, before, "the input is not changed");
  });

  it("signs one membership out with a notice, leaving the other and the sites", () => {
    const all = withSession(two(), NEWS, null, { reason: "support-ended", at: NOW });
    assert.equal(all[NEWS].session, null);
    assert.deepEqual(all[NEWS].notice, { reason: "support-ended", at: NOW });
    assert.equal(all[DAILY].session.refreshToken, `r-${DAILY}`);
    assert.deepEqual(Object.keys(all[NEWS].sites), [NEWS]);
    assert.deepEqual(activeSites(all).map((entry) => entry.origin), [DAILY]);
    assert.equal(withSession(all, NEWS, SESSION(NEWS))[NEWS].notice, null, "signing in clears the notice");
  });

  it("removes a membership with its sites", () => {
    const all = removeMembership(two(), NEWS);
    assert.deepEqual(Object.keys(all), [DAILY]);
    assert.equal(membershipOf(all, NEWS), null);
    assert.deepEqual(neededOrigins(all), [DAILY, DAILY]);
  });

  it("keeps an origin under one gate: allowing it under another moves it", () => {
    let all = two();
    all = allowSite(all, { gate: DAILY, origin: NEWS, site: "news", now: NOW + 5 });
    assert.equal(membershipOf(all, NEWS).gate, DAILY);
    assert.deepEqual(all[NEWS].sites, {});
    assert.deepEqual(all[DAILY].sites[NEWS], { origin: NEWS, site: "news", allowedAt: NOW + 5 });
    const again = allowSite(all, { gate: DAILY, origin: NEWS, site: "news", now: NOW + 99 });
    assert.equal(again[DAILY].sites[NEWS].allowedAt, NOW + 5, "allowing again keeps when it was first allowed");
    const removed = removeSite(all, NEWS);
    assert.equal(membershipOf(removed, NEWS), null);
    assert.deepEqual(removeSite(removed, NEWS), removed);
    assert.deepEqual(
      allSites(all).map((entry) => [entry.origin, entry.gate, entry.site]),
      [
        [DAILY, DAILY, "demo"],
        [NEWS, DAILY, "news"],
      ],
    );
  });

  it("gives each origin only its own pass, from its own gate", () => {
    const all = two();
    const cache = {
      [NEWS]: PASS(NEWS, NEWS),
      [DAILY]: PASS(DAILY, DAILY),
      "http://elsewhere.example": PASS("http://elsewhere.example", NEWS),
    };
    assert.deepEqual(passForOrigin(all, cache, NEWS, NOW), { gate: NEWS, site: "demo", pass: `pass-for-${NEWS}-from-${NEWS}` });
    assert.deepEqual(passForOrigin(all, cache, DAILY, NOW), { gate: DAILY, site: "demo", pass: `pass-for-${DAILY}-from-${DAILY}` });
    assert.equal(passForOrigin(all, cache, "http://elsewhere.example", NOW), null, "not allowed");
    assert.equal(passForOrigin(all, cache, "http://news.example:8080", NOW), null);
    assert.deepEqual(passGrants(all, cache, NOW), [
      { origin: NEWS, pass: `pass-for-${NEWS}-from-${NEWS}` },
      { origin: DAILY, pass: `pass-for-${DAILY}-from-${DAILY}` },
    ]);
  });

  it("never hands out a pass from another gate, for another site, filed under another origin, or expired", () => {
    const all = two();
    const wrong = {
      [NEWS]: PASS(NEWS, DAILY),
      [DAILY]: PASS(DAILY, DAILY, "other-site"),
    };
    assert.equal(passForOrigin(all, wrong, NEWS, NOW), null, "fetched from the other gate");
    assert.equal(passForOrigin(all, wrong, DAILY, NOW), null, "fetched for another site");
    assert.deepEqual(keptPasses(all, wrong, NOW), {});
    const misfiled = { [NEWS]: PASS(DAILY, DAILY) };
    assert.equal(passForOrigin(all, misfiled, NEWS, NOW), null, "an entry for another origin");
    assert.deepEqual(passGrants(all, misfiled, NOW), []);
    const expired = { [NEWS]: { ...PASS(NEWS, NEWS), expiresAt: NOW + 1000 } };
    assert.equal(passForOrigin(all, expired, NEWS, NOW), null);
  });

  it("gives nothing to the sites of a signed-out membership", () => {
    const all = withSession(two(), DAILY, null);
    const cache = { [NEWS]: PASS(NEWS, NEWS), [DAILY]: PASS(DAILY, DAILY) };
    assert.equal(passForOrigin(all, cache, DAILY, NOW), null);
    assert.deepEqual(Object.keys(keptPasses(all, cache, NOW)), [NEWS]);
    assert.deepEqual(passGrants(all, cache, NOW).map((grant) => grant.origin), [NEWS]);
  });

  it("migrates a configured gate and its sites into signed-out memberships", () => {
    const migrated = migrateLegacy({
      settings: { gate: NEWS },
      sites: {
        [NEWS]: { origin: NEWS, site: "demo", gate: NEWS, allowedAt: NOW - 10 },
        "http://old.example": { origin: "http://old.example", site: "old", gate: "http://old-gate.example", allowedAt: NOW - 20 },
        "http://broken.example": { origin: "http://broken.example" },
      },
    });
    assert.deepEqual(migrated, {
      [NEWS]: { ...emptyMembership(NEWS), sites: { [NEWS]: { origin: NEWS, site: "demo", allowedAt: NOW - 10 } } },
      "http://old-gate.example": {
        ...emptyMembership("http://old-gate.example"),
        sites: { "http://old.example": { origin: "http://old.example", site: "old", allowedAt: NOW - 20 } },
      },
    });
    assert.deepEqual(migrateLegacy({ settings: { gate: DAILY }, sites: null }), { [DAILY]: emptyMembership(DAILY) });
    assert.equal(migrateLegacy({ settings: null, sites: null }), null);
    assert.equal(migrateLegacy({ settings: {}, sites: {} }), null);
  });
});
