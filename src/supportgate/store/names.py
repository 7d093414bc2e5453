"""Key names. Every key starts with ``sg:``; the part in braces is the hash tag.

The catalog an admin manages (tiers, supporters, sites, keys, audit) shares the ``{dir}`` tag, so
a change that spans it (a grant that also claims the address and joins the tier) is one atomic
transaction on Redis Cluster as on a single server. Per-supporter state (sessions, the DPoP proofs they used) uses
``{sup:<id>}``, per-site traffic ``{site:<id>}``, and the token key material ``{keys}``. Keys that
stand alone (a pending code, a rate counter) carry a tag of their own, so they spread across a
cluster. The mail queue and its retries share ``{mail}``, so a mail moves between them atomically.

The ``{keys}`` keys hold the secrets (private signing keys, the pseudonym and code secrets),
each sealed under the master key, which is kept outside the store (``tokens/sealing.py``): a
copy of the store, its AOF or a backup holds no usable key material without it. They share one
hash tag so that re-wrapping them under a new master key is one transaction.
"""

from __future__ import annotations

__all__ = [
    "activation_code",
    "admin_keys",
    "audit_entries",
    "audit_index",
    "audit_target",
    "code_secret",
    "console_session",
    "dpop_proof",
    "email",
    "key_last_used",
    "mail_queue",
    "mail_retries",
    "meter",
    "pass_cutoff",
    "pseudonym_secret",
    "rate",
    "reports",
    "sealed",
    "session",
    "session_rotated",
    "sessions",
    "sign_in_code",
    "signing_keys",
    "site",
    "site_keys",
    "site_traffic",
    "sites",
    "stats",
    "stripe_customer",
    "stripe_event",
    "stripe_links",
    "stripe_links_indexed",
    "stripe_price",
    "stripe_subscription",
    "supporter",
    "supporters",
    "tier",
    "tier_members",
    "tiers",
]

_DIR = "sg:{dir}"
_KEYS = "sg:{keys}"


def tier(tier_id: str) -> str:
    """JSON record of one tier."""
    return f"{_DIR}:tier:{tier_id}"


def tiers() -> str:
    """Sorted set (lexical) of every tier id."""
    return f"{_DIR}:tiers"


def tier_members(tier_id: str) -> str:
    """Sorted set (lexical) of ``<created>:<id>`` of the supporters on a tier."""
    return f"{_DIR}:tier:{tier_id}:supporters"


def supporter(supporter_id: str) -> str:
    """JSON record of one supporter."""
    return f"{_DIR}:supporter:{supporter_id}"


def supporters() -> str:
    """Sorted set (lexical) of ``<created>:<id>`` of every supporter: the listing order."""
    return f"{_DIR}:supporters"


def email(address: str) -> str:
    """The supporter id that holds a normalised email address."""
    return f"{_DIR}:email:{address}"


def stripe_price(price_id: str) -> str:
    """The id of the tier a Stripe price grants (at most one tier per price)."""
    return f"{_DIR}:stripe:price:{price_id}"


def stripe_event(event_id: str) -> str:
    """A Stripe event already applied, kept for a while so that a redelivery changes nothing."""
    return f"{_DIR}:stripe:event:{event_id}"


def stripe_subscription(subscription_id: str) -> str:
    """Hash of one Stripe subscription: ``supporter`` (its id), ``applied`` (``created`` of the last event applied)."""
    return f"{_DIR}:stripe:subscription:{subscription_id}"


def stripe_customer(customer_id: str) -> str:
    """The id of the supporter a Stripe customer pays for."""
    return f"{_DIR}:stripe:customer:{customer_id}"


def stripe_links(supporter_id: str) -> str:
    """Set of a supporter's Stripe links, ``subscription:<id>`` and ``customer:<id>``: what erasure deletes."""
    return f"{_DIR}:stripe:supporter:{supporter_id}"


def stripe_links_indexed() -> str:
    """Set once every Stripe link written before :func:`stripe_links` existed has been indexed there."""
    return f"{_DIR}:stripe:links-indexed"


def site(site_id: str) -> str:
    """JSON record of one site."""
    return f"{_DIR}:site:{site_id}"


def sites() -> str:
    """Sorted set (lexical) of every site id."""
    return f"{_DIR}:sites"


def site_keys() -> str:
    """Hash of site API key id → JSON ``{site, hash, created_at}``."""
    return f"{_DIR}:site-keys"


def admin_keys() -> str:
    """Hash of admin key id → JSON ``{name, hash, created_at}``."""
    return f"{_DIR}:admin-keys"


def key_last_used() -> str:
    """Hash of ``admin:<key id>`` or ``site:<key id>`` → when the key was last used (ISO time, to the minute)."""
    return f"{_DIR}:key-last-used"


def audit_entries() -> str:
    """Hash of audit entry id → JSON entry."""
    return f"{_DIR}:audit:entries"


def audit_index() -> str:
    """Stream of ``{entry: <id>}``, one per admin write, in the order the store applied them."""
    return f"{_DIR}:audit"


def audit_target(target: str) -> str:
    """Set of the audit entry ids that concern one target, for erasure."""
    return f"{_DIR}:audit:target:{target}"


def sealed() -> tuple[str, ...]:
    """Every key whose value is a secret sealed under the master key: what the start opens, a re-wrap re-seals."""
    return (signing_keys(), pseudonym_secret(), code_secret())


def signing_keys() -> str:
    """The sealed JSON list of the signing keys: state, times and PKCS8 PEM private key. Secret."""
    return f"{_KEYS}:signing"


def pseudonym_secret() -> str:
    """The 32 random bytes, sealed, that key the per-site supporter pseudonyms. Secret."""
    return f"{_KEYS}:pseudonym-secret"


def code_secret() -> str:
    """The 32 random bytes, sealed, that key the HMACs of sign-in and activation codes. Secret."""
    return f"{_KEYS}:code-secret"


def sign_in_code(address_digest: str) -> str:
    """JSON of the pending sign-in code of one address (by its HMAC): the code's HMAC, tries left."""
    return f"sg:{{code:{address_digest}}}"


def activation_code(code_digest: str) -> str:
    """JSON of an activation code (by its HMAC): the supporter it signs in as, and its expiry."""
    return f"sg:{{act:{code_digest}}}"


def mail_queue() -> str:
    """Stream of mails waiting to be sent, read by the ``mailers`` consumer group. Holds sign-in codes."""
    return "sg:{mail}:queue"


def mail_retries() -> str:
    """Sorted set of mails whose delivery failed, scored by when to try again. Holds sign-in codes."""
    return "sg:{mail}:retries"


def rate(scope: str, subject: str, window: int) -> str:
    """A fixed-window request counter: ``scope`` (what is limited), ``subject`` (whom), window start."""
    return f"sg:{{rate:{scope}:{subject}}}:{window}"


def pass_cutoff(site_id: str, session_pseudonym: str) -> str:
    """The time before which passes of one session at one site are void (revoked, or tier changed)."""
    return f"sg:{{site:{site_id}}}:cutoff:{session_pseudonym}"


def sessions(supporter_id: str) -> str:
    """Set of the ids of a supporter's sessions (some may have idled out since)."""
    return f"sg:{{sup:{supporter_id}}}:sessions"


def session(supporter_id: str, session_id: str) -> str:
    """JSON record of one session: device, times, and hashes of its current and previous refresh tokens."""
    return f"sg:{{sup:{supporter_id}}}:session:{session_id}"


def session_rotated(supporter_id: str, session_id: str) -> str:
    """List of hashes of a session's older rotated refresh tokens, newest first, capped."""
    return f"sg:{{sup:{supporter_id}}}:session:{session_id}:rotated"


def dpop_proof(supporter_id: str, proof_digest: str) -> str:
    """A DPoP proof one of a supporter's sessions used (by SHA-256 of its key and ``jti``), kept for its lifetime."""
    return f"sg:{{sup:{supporter_id}}}:dpop:{proof_digest}"


def meter(site_id: str, period: str) -> str:
    """A site's metered page views per visitor in one period (``2026-11``, ``2026-W48``): a fixed-size sketch.

    One key per site and period, whatever visitor ids callers send (``gate/metering.py``).
    """
    return f"sg:{{site:{site_id}}}:meter:{period}"


def site_traffic(site_id: str) -> str:
    """A glob matching every key under one site's hash tag: its stats, reports, meters and pass cut-offs."""
    return f"sg:{{site:{site_id}}}:*"


def stats(site_id: str, day: str) -> str:
    """Hash of counter name → count for one site on one UTC day (``2026-11-24``)."""
    return f"sg:{{site:{site_id}}}:stats:{day}"


def reports(site_id: str) -> str:
    """List of a site's latest false-positive reports as JSON, newest first, capped."""
    return f"sg:{{site:{site_id}}}:reports"


def console_session(id_digest: str) -> str:
    """JSON of one admin console session (by SHA-256 of its id): the admin key, the CSRF token, times."""
    return f"sg:{{console:{id_digest}}}"
