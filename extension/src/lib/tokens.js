/**
 * The session's tokens: what a sign-in or a refresh gives, when to refresh, and how a refresh
 * that may be retried is recorded.
 *
 * The gate rotates the refresh token on every use and takes a second use of a spent token for
 * theft, so a refresh is recorded (with its `request_id`) before it is sent: a retry after a lost
 * answer, even from a restarted service worker, sends the same token with the same id and gets
 * the same new pair, as long as it comes within the gate's race window (10 s).
 */

/** Refresh this long before the access token expires, or at 10% of its lifetime if shorter. */
export const ACCESS_REFRESH_MARGIN_MS = 60_000;

/**
 * A new session from a sign-in answer (`/v1/auth/code/verify` or `/v1/auth/activate`).
 *
 * `tokenType` is `"DPoP"` when the gate bound the session to the device key (RFC 9449), and
 * `"Bearer"` for a gate that does not do DPoP.
 *
 * @param {{access_token: string, token_type?: string, expires_in: number, refresh_token: string, supporter: object}} body
 * @param {{gate: string, now: number}} context
 */
export function sessionFromSignIn(body, { gate, now }) {
  const supporter = body.supporter ?? {};
  return {
    gate,
    ...tokenPair(body, now),
    account: {
      id: supporter.id ?? null,
      email: null,
      tier: supporter.tier ?? null,
      tierName: null,
      entitlements: supporter.entitlements ?? [],
      expiresAt: supporter.expires_at ?? null,
    },
  };
}

/** Whether the body has the shape of a sign-in or refresh answer. */
export function isTokenPair(body) {
  return (
    body !== null &&
    typeof body === "object" &&
    typeof body.access_token === "string" &&
    typeof body.refresh_token === "string" &&
    Number.isFinite(body.expires_in) &&
    body.expires_in > 0
  );
}

/** When to refresh the access token: a margin before it expires. */
export function refreshDueAt(session) {
  const lifetime = session.accessExpiresAt - session.accessIssuedAt;
  return session.accessExpiresAt - Math.min(ACCESS_REFRESH_MARGIN_MS, lifetime / 10);
}

/** Whether the access token can still be sent (it has a few seconds left). */
export function accessTokenUsable(session, now) {
  return session !== null && session.accessToken !== null && now < session.accessExpiresAt - 5_000;
}

/**
 * The session with a refresh recorded as started, and the request to send.
 *
 * A refresh already recorded for the same refresh token is a retry: it keeps its `request_id`.
 *
 * @param {object} session
 * @param {() => string} newRequestId
 */
export function beginRefresh(session, newRequestId) {
  const pending =
    session.pendingRefresh && session.pendingRefresh.refreshToken === session.refreshToken
      ? session.pendingRefresh
      : { refreshToken: session.refreshToken, requestId: newRequestId() };
  return {
    session: { ...session, pendingRefresh: pending },
    request: { refresh_token: pending.refreshToken, request_id: pending.requestId },
  };
}

/** The session after a successful refresh: the new pair, nothing pending. */
export function completeRefresh(session, body, now) {
  const next = { ...session, ...tokenPair(body, now) };
  // An answer that does not say keeps the session's type.
  if (body?.token_type === undefined) next.tokenType = session.tokenType ?? "Bearer";
  return next;
}

/** A session's token fields from a sign-in or refresh answer received at `now`: nothing pending. */
function tokenPair(body, now) {
  return {
    accessToken: body.access_token,
    tokenType: tokenTypeOf(body),
    accessIssuedAt: now,
    accessExpiresAt: now + body.expires_in * 1000,
    refreshToken: body.refresh_token,
    pendingRefresh: null,
  };
}

/** How the gate wants the access token presented: `"DPoP"` (bound to the device key) or `"Bearer"`. */
export function tokenTypeOf(body) {
  return typeof body?.token_type === "string" && body.token_type.toLowerCase() === "dpop" ? "DPoP" : "Bearer";
}

/** The session with the account details from `/v1/me`. */
export function withAccount(session, me) {
  return {
    ...session,
    account: {
      id: me.id,
      email: me.email,
      tier: me.tier,
      tierName: me.tier_name,
      entitlements: me.entitlements,
      expiresAt: me.expires_at,
    },
  };
}

/**
 * What a failed gate call means for the session:
 * `"end"` (the gate ended it: sign out), or `"retry"` (keep it and try later).
 *
 * A 401 from refresh is a spent, reused or unknown token, ended support, or a DPoP proof the gate
 * refused (another key: this device's key is gone); a 403
 * `support-ended` comes from the pass route. A 409 `refresh-conflict` means another refresh of
 * the same token won, which a retry with our `request_id` sorts out.
 */
export function failureOutcome(error) {
  if (error?.status === 401) return "end";
  if (error?.status === 403 && error.slug === "support-ended") return "end";
  return "retry";
}

/** A random id for a refresh request, as the gate wants it (`[A-Za-z0-9_-]{8,64}`). */
export function randomRequestId(random = crypto) {
  const bytes = random.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}
