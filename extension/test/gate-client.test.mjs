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
});
