/** Why a pass was refused: the same words as the supportgate service's. */
export type Reason =
  | "malformed"
  | "bad_algorithm"
  | "unknown_key"
  | "keys_unavailable"
  | "bad_signature"
  | "wrong_type"
  | "missing_claim"
  | "wrong_issuer"
  | "wrong_audience"
  | "expired"
  | "not_yet_valid";

export declare const REASONS: readonly Reason[];
export declare const JWKS_REFETCH_INTERVAL_SECONDS: number;
export declare const JWKS_DEFAULT_MAX_AGE_SECONDS: number;

/** A pass that breaks a rule. */
export declare class InvalidToken extends Error {
  constructor(reason: Reason, detail?: string);
  readonly reason: Reason;
  readonly detail: string;
}

/** What a valid pass says about its holder. */
export interface VerifiedPass {
  /** The supporter's pseudonym for this site. */
  readonly sub: string;
  /** The supporter's tier id. */
  readonly tier: string;
  /** What the tier entitles its supporters to, e.g. `adblock_ok`. */
  readonly entitlements: readonly string[];
  /** The pseudonym of the signed-in session the pass was issued to. */
  readonly session: string;
  /** When the pass stops being valid. */
  readonly expiresAt: Date;
}

export interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
  [other: string]: unknown;
}

export type Jwks = { keys: Jwk[] } | Jwk[];

export type KeySource = { jwksUrl: string | URL; keys?: undefined } | { keys: Jwks; jwksUrl?: undefined };

export interface VerifierOptions {
  /** Your site id: a pass's `aud` must be it. */
  site: string;
  /** The gate's public URL: a pass's `iss` must be it. */
  issuer: string;
  /** Clock skew forgiven on `exp`, `nbf` and `iat`, in seconds (30). */
  leeway?: number;
  /** How many valid passes are remembered until they expire (10000; 0: none). */
  cacheSize?: number;
  /** How long a JWKS fetch may take, in milliseconds (5000). */
  timeoutMs?: number;
  /** The time, in milliseconds since the epoch (`Date.now`). */
  clock?: () => number;
  /** The fetch to use (`globalThis.fetch`). */
  fetch?: typeof globalThis.fetch;
  /** Told when a JWKS fetch fails (`console`). */
  logger?: { warn(message: string): void } | null;
}

export declare class PassVerifier {
  constructor(source: KeySource, options: VerifierOptions);
  /** The pass's holder; throws InvalidToken with the reason when it is not a valid pass for the site. */
  verify(token: string): Promise<VerifiedPass>;
}

/** The Ed25519 signing keys of a JWKS, by thumbprint. */
export declare function keysFromJwks(document: Jwks): Promise<Map<string, unknown>>;
