/**
 * The gate's reader API, as the service worker calls it. Nothing else in the extension talks to
 * the gate. Each call returns the parsed JSON answer or throws a `GateError`.
 *
 * With `prove` (`({htm, htu, accessToken}) => proof`), the token requests (sign-in, activate,
 * refresh, logout) carry a `DPoP` proof header (RFC 9449), and an access token of type `"DPoP"`
 * is presented as `Authorization: DPoP <token>` with a proof that carries its hash. A `"Bearer"`
 * token (from a gate that does not do DPoP) is presented as before.
 *
 * A gate takes a proof only if its `iat` is close to the gate's own clock. When it refuses a proof
 * (401 `invalid-dpop-proof`) and its `Date` header shows this device's clock is off, the call is
 * sent once more with a proof dated by the gate's clock, and later proofs to that gate are too.
 */

const TIMEOUT_MS = 15_000;
/** A site's name is not worth a long wait: the popup shows the host meanwhile. */
const ABOUT_TIMEOUT_MS = 5_000;

/** How far each gate's clock is ahead of this device's, in ms, as learnt from a refused proof. */
const clockOffsets = new Map();
/** A clock this far off (or more) from what the last proof assumed is corrected. */
const SKEW_MS = 3_000;

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
 * @param {null | ((request: {htm: string, htu: string, accessToken?: string, now: number}) => Promise<string>)} [prove]
 *   makes a proof dated `now` (ms)
 */
export function gateClient(base, fetchImpl = globalThis.fetch.bind(globalThis), prove = null) {
  async function call(method, path, options = {}, retried = false) {
    const { body, auth, dpop = false, timeout = TIMEOUT_MS } = options;
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const htu = base + path;
    const offset = clockOffsets.get(base) ?? 0;
    const now = Date.now() + offset;
    let proved = false;
    if (auth && auth.tokenType === "DPoP" && prove) {
      headers.Authorization = `DPoP ${auth.accessToken}`;
      headers.DPoP = await prove({ htm: method, htu, accessToken: auth.accessToken, now });
      proved = true;
    } else if (auth) {
      headers.Authorization = `Bearer ${auth.accessToken}`;
    } else if (dpop && prove) {
      headers.DPoP = await prove({ htm: method, htu, now });
      proved = true;
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
      if (proved && !retried && response.status === 401 && slug === "invalid-dpop-proof") {
        // The gate's Date has a one-second resolution: its middle is the best guess.
        const gateNow = Date.parse(response.headers.get("Date") ?? "") + 500;
        const seen = gateNow - Date.now();
        if (Number.isFinite(seen) && Math.abs(seen - offset) >= SKEW_MS) {
          clockOffsets.set(base, seen);
          return call(method, path, options, true);
        }
      }
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
