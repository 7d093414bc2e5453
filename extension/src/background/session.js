/**
 * The supporter's session with the gate: signing in and out, keeping the access token fresh,
 * and ending the session cleanly when the gate says it is over.
 *
 * Functions here that change storage expect to run inside `state.exclusive`.
 */

import * as api from "../lib/api.js";
import { deviceLabel } from "../lib/compat.js";
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

/** The configured gate's client, once the browser lets the extension reach it. */
export async function configuredGate() {
  const { gate } = await state.settings.get();
  if (!(await api.permissions.contains([hostPattern(gate)]))) {
    throw new Refusal("gate-permission", `supportgate may not reach the gate at ${gate} yet.`, { gate });
  }
  return { gate, client: gateClient(gate) };
}

/** Ask the gate to email a sign-in code (the same answer whoever the address belongs to). */
export async function requestCode(email, site) {
  const { client } = await configuredGate();
  await client.requestCode(email, site).catch(asRefusal);
}

/**
 * Sign in with an emailed code or an activation code, replacing any session there was.
 *
 * @param {"code" | "activation"} kind
 */
export async function signIn(kind, request) {
  const { gate, client } = await configuredGate();
  const body = { ...request, device: deviceLabel() };
  const answer = await (kind === "code" ? client.verifyCode(body) : client.activate(body)).catch(asRefusal);
  if (!isTokenPair(answer)) throw new Refusal("gate", "The gate's sign-in answer was not understood.");
  const previous = await state.session.get();
  if (previous !== null) await endSession("replaced", { logout: true });
  await state.session.set(sessionFromSignIn(answer, { gate, now: Date.now() }));
  await state.signOutNotice.set(null);
  await loadAccount().catch(() => undefined);
}

/** Fill in the account (email, tier name, end date) from `/v1/me`. */
export async function loadAccount() {
  const me = await withAccessToken((client, token) => client.me(token));
  const current = await state.session.get();
  if (current !== null) await state.session.set(withAccount(current, me));
}

/**
 * Run `call(client, accessToken)` with a fresh access token, refreshing first when it is due and
 * once more if the gate refuses the token. Throws `Refusal("signed-out")` when there is no session
 * or the gate ended it.
 */
export async function withAccessToken(call) {
  let current = await state.session.get();
  if (current === null) throw new Refusal("signed-out", "Sign in first.");
  if (!accessTokenUsable(current, Date.now())) current = await refreshTokens(current);
  const client = gateClient(current.gate);
  try {
    return await call(client, current.accessToken);
  } catch (error) {
    if (!(error instanceof GateError)) throw error;
    if (error.status === 401) {
      current = await refreshTokens(current);
      return call(client, current.accessToken).catch((again) => settle(again));
    }
    return settle(error);
  }
}

/** Refresh when the access token is due for it; the session as it now is. */
export async function refreshIfDue(now = Date.now()) {
  const current = await state.session.get();
  if (current !== null && now >= refreshDueAt(current)) return refreshTokens(current);
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
 * a lost answer is retried at once, within the gate's race window.
 */
async function refreshTokens(current) {
  const { session: pending, request } = beginRefresh(current, randomRequestId);
  await state.session.set(pending);
  let answer;
  try {
    answer = await sendRefresh(current.gate, request);
  } catch (error) {
    return settle(error);
  }
  if (!isTokenPair(answer)) throw new Refusal("gate", "The gate's refresh answer was not understood.");
  const refreshed = completeRefresh(pending, answer, Date.now());
  await state.session.set(refreshed);
  return refreshed;
}

async function sendRefresh(gate, request) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await gateClient(gate).refresh(request);
    } catch (error) {
      const lost = !(error instanceof GateError) || error.status === 0 || error.status >= 500;
      if (!lost || attempt >= REFRESH_RETRY_DELAYS_MS.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, REFRESH_RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** React to a failed gate call: end the session when the gate ended it; always throw. */
async function settle(error) {
  if (error instanceof GateError && failureOutcome(error) === "end") {
    await endSession(error.slug === "support-ended" ? "support-ended" : "session-ended");
    throw new Refusal("signed-out", error.message, { reason: error.slug });
  }
  throw asRefusalError(error);
}

/**
 * End the session here: forget the tokens and passes and drop every header rule. With
 * `logout`, tell the gate too, so the session ends there (and its passes are voided).
 *
 * The allowed sites stay (the reader chose them; they get nothing while signed out), and so
 * does the handshake script, which answers nothing without a pass.
 */
export async function endSession(reason, { logout = false } = {}) {
  const current = await state.session.get();
  await state.session.set(null);
  await state.passes.set({});
  await state.signOutNotice.set(reason === "signed-out" || reason === "replaced" ? null : { reason, at: Date.now() });
  await sync();
  if (logout && current !== null) {
    await gateClient(current.gate)
      .logout(current.refreshToken)
      .catch(() => undefined);
  }
}

/** End the session on the reader's request: at the gate too. */
export const signOut = () => endSession("signed-out", { logout: true });

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
