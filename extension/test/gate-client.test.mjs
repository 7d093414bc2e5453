import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { GateError, gateClient } from "../src/background/gate-client.js";

function fakeFetch(status, body, calls = []) {
  return async (url, init) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  };
}

describe("gate client", () => {
  it("posts JSON to the gate without cookies and with the bearer token", async () => {
    const calls = [];
    const client = gateClient("http://127.0.0.1:8000", fakeFetch(200, { pass: "p", expires_at: "x" }, calls));
    assert.deepEqual(await client.pass({ accessToken: "tok", tokenType: "Bearer" }, "demo"), { pass: "p", expires_at: "x" });
    const [{ url, init }] = calls;
    assert.equal(url, "http://127.0.0.1:8000/v1/passes");
    assert.equal(init.method, "POST");
    assert.equal(init.credentials, "omit");
    assert.equal(init.headers.Authorization, "Bearer tok");
    assert.deepEqual(JSON.parse(init.body), { site: "demo" });
  });

  it("sends the refresh request id the caller gives", async () => {
    const calls = [];
    await gateClient("https://g.example", fakeFetch(200, {}, calls)).refresh({ refresh_token: "r", request_id: "id-12345678" });
    assert.deepEqual(JSON.parse(calls[0].init.body), { refresh_token: "r", request_id: "id-12345678" });
  });

  it("turns a problem document into a GateError with its slug", async () => {
    const problem = { type: "urn:supportgate:problem:device-limit", status: 409, detail: "Too many.", max_devices: 2, sessions: [] };
    const client = gateClient("https://g.example", fakeFetch(409, problem));
    await assert.rejects(client.verifyCode({}), (error) => {
      assert.ok(error instanceof GateError);
      assert.equal(error.status, 409);
      assert.equal(error.slug, "device-limit");
      assert.equal(error.message, "Too many.");
      assert.equal(error.problem.max_devices, 2);
      return true;
    });
  });

  it("reports an unreachable gate as status 0", async () => {
    const client = gateClient("https://g.example", async () => {
      throw new TypeError("Failed to fetch");
    });
    await assert.rejects(client.me({ accessToken: "t", tokenType: "Bearer" }), (error) => error instanceof GateError && error.status === 0);
  });

  it("accepts an empty 204 answer", async () => {
    assert.equal(await gateClient("https://g.example", fakeFetch(204)).logout("r"), null);
  });

  it("sends a DPoP proof with every token request, and none with a code request", async () => {
    const calls = [];
    const proofs = [];
    const prove = async (request) => {
      proofs.push(request);
      return `proof-${proofs.length}`;
    };
    const client = gateClient("https://g.example/base", fakeFetch(200, {}, calls), prove);
    await client.requestCode("r@example.com");
    await client.verifyCode({ email: "r@example.com", code: "123456" });
    await client.activate({ code: "x" });
    await client.refresh({ refresh_token: "r", request_id: "id-12345678" });
    await client.logout("r");
    assert.equal(calls[0].init.headers.DPoP, undefined);
    assert.deepEqual(
      calls.slice(1).map(({ url, init }) => [url, init.headers.DPoP, init.headers.Authorization]),
      [
        ["https://g.example/base/v1/auth/code/verify", "proof-1", undefined],
        ["https://g.example/base/v1/auth/activate", "proof-2", undefined],
        ["https://g.example/base/v1/auth/refresh", "proof-3", undefined],
        ["https://g.example/base/v1/auth/logout", "proof-4", undefined],
      ],
    );
    assert.deepEqual(Object.keys(proofs[2]).sort(), ["htm", "htu", "now"]);
    assert.deepEqual([proofs[2].htm, proofs[2].htu], ["POST", "https://g.example/base/v1/auth/refresh"]);
    assert.ok(Math.abs(proofs[2].now - Date.now()) < 5_000, "dated by this clock while the gate has not said otherwise");
  });

  it("presents a DPoP token with a proof bound to it, and a Bearer token as before", async () => {
    const calls = [];
    const proofs = [];
    const prove = async (request) => {
      proofs.push(request);
      return "proof";
    };
    const client = gateClient("https://g.example", fakeFetch(200, {}, calls), prove);
    await client.me({ accessToken: "bound", tokenType: "DPoP" });
    await client.pass({ accessToken: "bound", tokenType: "DPoP" }, "demo", "https://news.example");
    await client.me({ accessToken: "plain", tokenType: "Bearer" });
    assert.deepEqual(
      calls.map(({ init }) => [init.method, init.headers.Authorization, init.headers.DPoP]),
      [
        ["GET", "DPoP bound", "proof"],
        ["POST", "DPoP bound", "proof"],
        ["GET", "Bearer plain", undefined],
      ],
    );
    assert.deepEqual(
      proofs.map(({ htm, htu, accessToken }) => ({ htm, htu, accessToken })),
      [
        { htm: "GET", htu: "https://g.example/v1/me", accessToken: "bound" },
        { htm: "POST", htu: "https://g.example/v1/passes", accessToken: "bound" },
      ],
    );
  });

  it("reads a refused proof as a 401 with its slug", async () => {
    const problem = { type: "urn:supportgate:problem:invalid-dpop-proof", status: 401, detail: "The DPoP proof is not valid." };
    const client = gateClient("https://g.example", fakeFetch(401, problem), async () => "proof");
    await assert.rejects(client.refresh({}), (error) => error.status === 401 && error.slug === "invalid-dpop-proof");
  });

  it("asks for a site's public name card without credentials", async () => {
    const calls = [];
    const about = { id: "demo", name: "The Daily Demo", logo_url: null, support_url: null };
    assert.deepEqual(await gateClient("https://g.example", fakeFetch(200, about, calls)).about("demo"), about);
    assert.equal(calls[0].url, "https://g.example/v1/sites/demo/about");
    assert.equal(calls[0].init.method, "GET");
    assert.equal(calls[0].init.headers.Authorization, undefined);
  });

  it("dates the proof by the gate's clock, once, when the gate refused it and its Date shows this clock is off", async () => {
    const gateTime = Date.now() + 10 * 60_000;
    const problem = { type: "urn:supportgate:problem:invalid-dpop-proof", status: 401, detail: "The proof's iat is too old." };
    const answers = [
      new Response(JSON.stringify(problem), { status: 401, headers: { Date: new Date(gateTime).toUTCString() } }),
      new Response(JSON.stringify({ ok: 1 }), { status: 200 }),
      new Response(JSON.stringify(problem), { status: 401, headers: { Date: new Date(gateTime).toUTCString() } }),
    ];
    const proofs = [];
    const client = gateClient("https://skewed.example", async () => answers.shift(), async ({ now }) => {
      proofs.push(now);
      return "proof";
    });
    assert.deepEqual(await client.refresh({ refresh_token: "r", request_id: "id-12345678" }), { ok: 1 });
    assert.equal(proofs.length, 2);
    assert.ok(Math.abs(proofs[1] - gateTime) < 3_000, "the retry is dated by the gate's clock");
    // Later proofs to this gate use its clock from the start; a refusal with no skew left is final.
    await assert.rejects(client.logout("r"), (error) => error.status === 401 && error.slug === "invalid-dpop-proof");
    assert.equal(proofs.length, 3);
    assert.ok(Math.abs(proofs[2] - gateTime) < 3_000);
  });

  it("does not retry a refused proof when the clocks agree", async () => {
    const problem = { type: "urn:supportgate:problem:invalid-dpop-proof", status: 401 };
    let calls = 0;
    const client = gateClient(
      "https://in-time.example",
      async () => {
        calls += 1;
        return new Response(JSON.stringify(problem), { status: 401, headers: { Date: new Date().toUTCString() } });
      },
      async () => "proof",
    );
    await assert.rejects(client.me({ accessToken: "a", tokenType: "DPoP" }), (error) => error.slug === "invalid-dpop-proof");
    assert.equal(calls, 1);
  });
});
