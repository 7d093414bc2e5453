/**
 * Each membership's session with its gate: signing in and out, keeping the access token fresh,
 * and ending the session cleanly when the gate says it is over. Every call names its gate.
 *
 * Sessions are bound to the device's key with DPoP (RFC 9449) where the gate does DPoP: every
 * token request carries a proof signed with the key kept in IndexedDB, so the refresh token in
 * `storage.local` is worthless without this browser's key.
 *
 * Functions here that change storage expect to run inside `state.exclusive`.
 */

import * as api from "../lib/api.js";
import { deviceLabel } from "../lib/compat.js";
import { deviceKey } from "../lib/device-key.js";
import { createProof } from "../lib/dpop.js";
import { withSession } from "../lib/memberships.js";
import { hostPattern } from "../lib/origins.js";
import { Refusal } from "../lib/refusal.js";
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
} from "../lib/tokens.js";
import { sync } from "./delivery.js";
import { GateError, gateClient } from "./gate-client.js";
import * as state from "./state.js";

/** A DPoP proof signed with the device's key, dated `now` (the gate's clock, as far as known). */
async function prove({ htm, htu, accessToken, now }) {
  return createProof({ key: await deviceKey(), htm, htu, accessToken, now });
}

/** The client for `gate`, proving possession of the device key. */
export const clientFor = (gate) => gateClient(gate, undefined, prove);

/** The session of `gate`'s membership, or null. */
export async function sessionOf(gate) {
  return (await state.memberships.get())[gate]?.session ?? null;
}

async function setSession(gate, session, notice = null) {
  await state.memberships.set(withSession(await state.memberships.get(), gate, session, notice));
}

/** `gate`'s client, once the browser lets the extension reach it. */
async function reachableGate(gate) {
  if (!(await api.permissions.contains([hostPattern(gate)]))) {
    throw new Refusal("gate-permission", `supportgate may not reach the gate at ${gate} yet.`, { gate });
  }
  return clientFor(gate);
}

/** Ask `gate` to email a sign-in code (the same answer whoever the address belongs to). */
export async function requestCode(gate, email, site) {
  const client = await reachableGate(gate);
  await client.requestCode(email, site).catch(asRefusal);
}

/**
 * Sign in to `gate` with an emailed code or an activation code, replacing any session its
 * membership had.
 *
 * @param {string} gate
 * @param {"code" | "activation"} kind
 */
export async function signIn(gate, kind, request) {
  const client = await reachableGate(gate);
  const body = { ...request, device: deviceLabel() };
  const answer = await (kind === "code" ? client.verifyCode(body) : client.activate(body)).catch(asRefusal);
  if (!isTokenPair(answer)) throw new Refusal("gate", "The gate's sign-in answer was not understood.");
  if ((await sessionOf(gate)) !== null) await endSession(gate, "replaced", { logout: true });
  await setSession(gate, sessionFromSignIn(answer, { gate, now: Date.now() }));
  await loadAccount(gate).catch(() => undefined);
}

/** Fill in `gate`'s account (email, tier name, end date) from `/v1/me`. */
export async function loadAccount(gate) {
  const me = await withAccessToken(gate, (client, auth) => client.me(auth));
  const current = await sessionOf(gate);
  if (current !== null) await setSession(gate, withAccount(current, me));
}

const authOf = (session) => ({ accessToken: session.accessToken, tokenType: session.tokenType ?? "Bearer" });

/**
 * Run `call(client, auth)` with a fresh access token of `gate`'s session, refreshing first when
 * it is due and once more if the gate refuses the token. Throws `Refusal("signed-out")` when
 * there is no session or the gate ended it.
 */
export async function withAccessToken(gate, call) {
  let current = await sessionOf(gate);
  if (current === null) throw new Refusal("signed-out", "Sign in first.", { gate });
  if (!accessTokenUsable(current, Date.now())) current = await refreshTokens(gate, current);
  const client = clientFor(gate);
  try {
    return await call(client, authOf(current));
  } catch (error) {
    if (!(error instanceof GateError)) throw error;
    if (error.status === 401) {
      current = await refreshTokens(gate, current);
      return call(client, authOf(current)).catch((again) => settle(gate, again));
    }
    return settle(gate, error);
  }
}

/** Refresh `gate`'s session when its access token is due for it; the session as it now is. */
export async function refreshIfDue(gate, now = Date.now()) {
  const current = await sessionOf(gate);
  if (current !== null && now >= refreshDueAt(current)) return refreshTokens(gate, current);
  return current;
}

/**
 * Retries of a refresh whose answer was lost. The gate takes a retry (same `request_id`) only
 * within its race window (10 s) after the refresh it repeats; later, it is token reuse.
 */
const REFRESH_RETRY_DELAYS_MS = [500, 2_000, 4_000];

/**
 * Trade the refresh token for a new pair. The request is stored before it is sent, so a retry
 * (after a lost answer or a restart) reuses its `request_id` and is not taken for token theft;
 * a lost answer is retried at once, within the gate's race window. Each try has a proof of its
 * own (a new `jti`).
 */
async function refreshTokens(gate, current) {
  const { session: pending, request } = beginRefresh(current, randomRequestId);
  await setSession(gate, pending);
  let answer;
  try {
    answer = await sendRefresh(gate, request);
  } catch (error) {
    return settle(gate, error);
  }
  if (!isTokenPair(answer)) throw new Refusal("gate", "The gate's refresh answer was not understood.");
  const refreshed = completeRefresh(pending, answer, Date.now());
  await setSession(gate, refreshed);
  return refreshed;
}

async function sendRefresh(gate, request) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await clientFor(gate).refresh(request);
    } catch (error) {
      const lost = !(error instanceof GateError) || error.status === 0 || error.status >= 500;
      if (!lost || attempt >= REFRESH_RETRY_DELAYS_MS.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, REFRESH_RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** React to a failed gate call: end the session when the gate ended it; always throw. */
async function settle(gate, error) {
  if (error instanceof GateError && failureOutcome(error) === "end") {
    await endSession(gate, error.slug === "support-ended" ? "support-ended" : "session-ended");
    throw new Refusal("signed-out", error.message, { reason: error.slug, gate });
  }
  throw asRefusalError(error);
}

/**
 * End `gate`'s session here: forget its tokens and its sites' passes, and drop their header
 * rules. With `logout`, tell the gate too, so the session ends there (and its passes are voided).
 *
 * The membership's allowed sites stay (the reader chose them; they get nothing while signed
 * out), and so does the handshake script, which answers nothing without a pass.
 */
export async function endSession(gate, reason, { logout = false } = {}) {
  const current = await sessionOf(gate);
  const notice = reason === "signed-out" || reason === "replaced" ? null : { reason, at: Date.now() };
  await setSession(gate, null, notice);
  const cache = await state.passes.get();
  await state.passes.set(Object.fromEntries(Object.entries(cache).filter(([, entry]) => entry.gate !== gate)));
  await sync();
  if (logout && current !== null) {
    await clientFor(gate)
      .logout(current.refreshToken)
      .catch(() => undefined);
  }
}

/** End `gate`'s session on the reader's request: at the gate too. */
export const signOut = (gate) => endSession(gate, "signed-out", { logout: true });

function asRefusal(error) {
  throw asRefusalError(error);
}

function asRefusalError(error) {
  if (!(error instanceof GateError)) return error;
  const details = { status: error.status, reason: error.slug };
  if (error.slug === "device-limit") {
    details.maxDevices = error.problem.max_devices;
    details.sessions = Array.isArray(error.problem.sessions) ? error.problem.sessions : [];
  }
  const code = error.status === 0 ? "unreachable" : error.slug;
  return new Refusal(code, error.message, details);
}
