import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  accessTokenUsable,
  beginRefresh,
  completeRefresh,
  failureOutcome,
  isTokenPair,
  randomRequestId,
  refreshDueAt,
  sessionFromSignIn,
  withAccount,
} from "../src/lib/tokens.js";

const NOW = Date.parse("2026-11-24T12:00:00Z");
const SIGN_IN = {
  access_token: "access-1",
  token_type: "Bearer",
  expires_in: 900,
  refresh_token: "sgr_1",
  supporter: { id: "s1", tier: "supporter", entitlements: ["adblock_ok"], expires_at: null },
};

const fresh = () => sessionFromSignIn(SIGN_IN, { gate: "http://127.0.0.1:8000", now: NOW });
let counter = 0;
const ids = () => `request-${++counter}`;

describe("token store", () => {
  it("keeps the tokens and the supporter from a sign-in", () => {
    const session = fresh();
    assert.equal(session.accessToken, "access-1");
    assert.equal(session.refreshToken, "sgr_1");
    assert.equal(session.accessExpiresAt, NOW + 900_000);
    assert.equal(session.account.tier, "supporter");
    assert.equal(session.pendingRefresh, null);
    assert.equal(session.tokenType, "Bearer");
  });

  it("knows a DPoP-bound session from the gate's token_type, and keeps it across a refresh that does not say", () => {
    const bound = sessionFromSignIn({ ...SIGN_IN, token_type: "DPoP" }, { gate: "g", now: NOW });
    assert.equal(bound.tokenType, "DPoP");
    const { session: pending } = beginRefresh(bound, ids);
    const refreshed = completeRefresh(pending, { access_token: "a2", refresh_token: "r2", expires_in: 900 }, NOW);
    assert.equal(refreshed.tokenType, "DPoP");
    const told = completeRefresh(pending, { access_token: "a2", refresh_token: "r2", expires_in: 900, token_type: "Bearer" }, NOW);
    assert.equal(told.tokenType, "Bearer");
    assert.equal(sessionFromSignIn({ ...SIGN_IN, token_type: undefined }, { gate: "g", now: NOW }).tokenType, "Bearer");
  });

  it("refreshes a minute before a 15-minute access token expires", () => {
    assert.equal(refreshDueAt(fresh()), NOW + 840_000);
  });

  it("refreshes at 90% of the lifetime of a short-lived access token", () => {
    const session = sessionFromSignIn({ ...SIGN_IN, expires_in: 60 }, { gate: "g", now: NOW });
    assert.equal(refreshDueAt(session), NOW + 54_000);
  });

  it("stops using an access token in its last seconds", () => {
    const session = fresh();
    assert.ok(accessTokenUsable(session, NOW));
    assert.ok(!accessTokenUsable(session, NOW + 896_000));
    assert.ok(!accessTokenUsable(null, NOW));
  });

  it("records a refresh before it is sent, with the token it spends and a new request id", () => {
    const { session, request } = beginRefresh(fresh(), ids);
    assert.equal(request.refresh_token, "sgr_1");
    assert.match(request.request_id, /^request-\d+$/);
    assert.deepEqual(session.pendingRefresh, { refreshToken: "sgr_1", requestId: request.request_id });
  });

  it("a retry of an unfinished refresh sends the same request id", () => {
    const first = beginRefresh(fresh(), ids);
    const retry = beginRefresh(first.session, ids);
    assert.equal(retry.request.request_id, first.request.request_id);
    assert.equal(retry.request.refresh_token, "sgr_1");
  });

  it("a finished refresh takes the new pair and clears what was pending", () => {
    const { session } = beginRefresh(fresh(), ids);
    const later = NOW + 850_000;
    const done = completeRefresh(session, { access_token: "access-2", expires_in: 900, refresh_token: "sgr_2" }, later);
    assert.equal(done.accessToken, "access-2");
    assert.equal(done.refreshToken, "sgr_2");
    assert.equal(done.accessExpiresAt, later + 900_000);
    assert.equal(done.pendingRefresh, null);
    const next = beginRefresh(done, ids);
    assert.notEqual(next.request.request_id, session.pendingRefresh.requestId);
    assert.equal(next.request.refresh_token, "sgr_2");
  });

  it("keeps the account from /v1/me", () => {
    const me = { id: "s1", email: "r@example.com", tier: "patron", tier_name: "Patron", entitlements: [], expires_at: "2027-01-01T00:00:00Z" };
    const session = withAccount(fresh(), me);
    assert.equal(session.account.email, "r@example.com");
    assert.equal(session.account.tierName, "Patron");
    assert.equal(session.account.expiresAt, "2027-01-01T00:00:00Z");
    assert.equal(session.refreshToken, "sgr_1");
  });

  it("ends the session on a 401 or ended support, and retries anything else", () => {
    assert.equal(failureOutcome({ status: 401, slug: "refresh-reused" }), "end");
    assert.equal(failureOutcome({ status: 401, slug: "support-ended" }), "end");
    assert.equal(failureOutcome({ status: 403, slug: "support-ended" }), "end");
    assert.equal(failureOutcome({ status: 403, slug: "forbidden" }), "retry");
    assert.equal(failureOutcome({ status: 409, slug: "refresh-conflict" }), "retry");
    assert.equal(failureOutcome({ status: 503, slug: "store-unavailable" }), "retry");
    assert.equal(failureOutcome({ status: 0, slug: "unreachable" }), "retry");
  });

  it("checks the shape of a token pair", () => {
    assert.ok(isTokenPair(SIGN_IN));
    assert.ok(!isTokenPair({ ...SIGN_IN, expires_in: 0 }));
    assert.ok(!isTokenPair({ access_token: "a" }));
    assert.ok(!isTokenPair(null));
  });

  it("makes request ids the gate accepts", () => {
    const id = randomRequestId();
    assert.match(id, /^[A-Za-z0-9_-]{8,64}$/);
    assert.notEqual(randomRequestId(), id);
  });
});
