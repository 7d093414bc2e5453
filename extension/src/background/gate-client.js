/**
 * The gate's reader API, as the service worker calls it. Nothing else in the extension talks to
 * the gate. Each call returns the parsed JSON answer or throws a `GateError`.
 *
 * With `prove` (`({htm, htu, accessToken}) => proof`), the token requests (sign-in, activate,
 * refresh, logout) carry a `DPoP` proof header (RFC 9449), and an access token of type `"DPoP"`
 * is presented as `Authorization: DPoP <token>` with a proof that carries its hash. A `"Bearer"`
 * token (from a gate that does not do DPoP) is presented as before.
 */

const TIMEOUT_MS = 15_000;
/** A site's name is not worth a long wait: the popup shows the host meanwhile. */
const ABOUT_TIMEOUT_MS = 5_000;

/** A failed call: the HTTP status (0 when the gate was not reached) and the problem's slug. */
export class GateError extends Error {
  constructor(status, slug, message, problem = {}) {
    super(message);
    this.status = status;
    this.slug = slug;
    this.problem = problem;
  }
}

/**
 * The gate at `base` (an origin, optionally with a path).
 *
 * @param {string} base
 * @param {typeof fetch} [fetchImpl]
 * @param {null | ((request: {htm: string, htu: string, accessToken?: string}) => Promise<string>)} [prove]
 */
export function gateClient(base, fetchImpl = globalThis.fetch.bind(globalThis), prove = null) {
  async function call(method, path, { body, auth, dpop = false, timeout = TIMEOUT_MS } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const htu = base + path;
    if (auth && auth.tokenType === "DPoP" && prove) {
      headers.Authorization = `DPoP ${auth.accessToken}`;
      headers.DPoP = await prove({ htm: method, htu, accessToken: auth.accessToken });
    } else if (auth) {
      headers.Authorization = `Bearer ${auth.accessToken}`;
    } else if (dpop && prove) {
      headers.DPoP = await prove({ htm: method, htu });
    }
    let response;
    try {
      response = await fetchImpl(htu, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
        signal: AbortSignal.timeout(timeout),
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
    verifyCode: (request) => call("POST", "/v1/auth/code/verify", { body: request, dpop: true }),
    activate: (request) => call("POST", "/v1/auth/activate", { body: request, dpop: true }),
    refresh: (request) => call("POST", "/v1/auth/refresh", { body: request, dpop: true }),
    logout: (refreshToken) => call("POST", "/v1/auth/logout", { body: { refresh_token: refreshToken }, dpop: true }),
    /** `auth`: `{accessToken, tokenType}` from the session. */
    me: (auth) => call("GET", "/v1/me", { auth }),
    pass: (auth, site, origin) => call("POST", "/v1/passes", { auth, body: { site, origin } }),
    /** The site's public name card: `{id, name, logo_url, support_url}`. */
    about: (site) => call("GET", `/v1/sites/${encodeURIComponent(site)}/about`, { timeout: ABOUT_TIMEOUT_MS }),
  };
}
