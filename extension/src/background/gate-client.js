/**
 * The gate's reader API, as the service worker calls it. Nothing else in the extension talks to
 * the gate. Each call returns the parsed JSON answer or throws a `GateError`.
 */

const TIMEOUT_MS = 15_000;

/** A failed call: the HTTP status (0 when the gate was not reached) and the problem's slug. */
export class GateError extends Error {
  constructor(status, slug, message, problem = {}) {
    super(message);
    this.status = status;
    this.slug = slug;
    this.problem = problem;
  }
}

/** The gate at `base` (an origin, optionally with a path). */
export function gateClient(base, fetchImpl = globalThis.fetch.bind(globalThis)) {
  async function call(method, path, { body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetchImpl(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new GateError(0, "unreachable", `The gate at ${base} could not be reached (${error?.message ?? error}).`);
    }
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const problem = parsed && typeof parsed === "object" ? parsed : {};
      const slug = typeof problem.type === "string" ? problem.type.split(":").pop() : `http-${response.status}`;
      const message = typeof problem.detail === "string" ? problem.detail : `The gate answered ${response.status}.`;
      throw new GateError(response.status, slug, message, problem);
    }
    return parsed;
  }

  return {
    requestCode: (email, site) => call("POST", "/v1/auth/code/request", { body: site ? { email, site } : { email } }),
    verifyCode: (request) => call("POST", "/v1/auth/code/verify", { body: request }),
    activate: (request) => call("POST", "/v1/auth/activate", { body: request }),
    refresh: (request) => call("POST", "/v1/auth/refresh", { body: request }),
    logout: (refreshToken) => call("POST", "/v1/auth/logout", { body: { refresh_token: refreshToken } }),
    me: (token) => call("GET", "/v1/me", { token }),
    pass: (token, site, origin) => call("POST", "/v1/passes", { token, body: { site, origin } }),
  };
}
