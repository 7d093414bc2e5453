/**
 * @supportgate/verify: verify supportgate supporter passes offline, with the service's own rules.
 *
 *     import { InvalidToken, PassVerifier } from "@supportgate/verify";
 *
 *     const verifier = new PassVerifier(
 *       { jwksUrl: "https://gate.example/.well-known/jwks.json" },
 *       { site: "news", issuer: "https://gate.example" },
 *     );
 *     try {
 *       const supporter = await verifier.verify(request.headers.get("Supportgate-Pass") ?? "");
 *     } catch (error) {
 *       if (!(error instanceof InvalidToken)) throw error;
 *       // error.reason says why: "expired", "wrong_audience", ...
 *     }
 */

export { InvalidToken, REASONS, keysFromJwks } from "./rules.js";
export { JWKS_DEFAULT_MAX_AGE_SECONDS, JWKS_REFETCH_INTERVAL_SECONDS, PassVerifier } from "./verifier.js";
