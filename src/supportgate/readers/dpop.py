"""Sender-constrained sessions (DPoP, RFC 9449): checking a request's proof, remembering it, the binding rules.

A session that starts with a DPoP proof is bound to its key's thumbprint (``jkt``); from then on its
refreshes, its logout and its access tokens need a fresh proof by that key. A session that starts
without one stays a bearer session. The checks that need no store are
:func:`supportgate.tokens.dpop.verify_proof`'s; here the request's URL is the service's public URL
(the token issuer) and its path, ``now`` is the service clock, and each proof's ``jti`` is
remembered under the supporter's hash tag for as long as the proof could be accepted, so it works
once, in the same transaction as the change it allows where there is one.
"""

from __future__ import annotations

import hashlib
import hmac

from redis.asyncio.client import Pipeline

from supportgate.clock import Clock
from supportgate.errors import InvalidDpopProof
from supportgate.store import Client, names
from supportgate.tokens.dpop import DpopProof, verify_proof
from supportgate.tokens.lifetimes import DPOP_PROOF_LIFETIME

__all__ = ["DpopProofs", "remember", "require_key", "spend", "watch_unspent"]

_LIFETIME_S = int(DPOP_PROOF_LIFETIME.total_seconds())
_REPLAYED = "The DPoP proof was used before (its jti is known): make a new proof for every request."


class DpopProofs:
    """Checks the DPoP proof a request brings against the request: its method, the public URL, the time."""

    def __init__(self, clock: Clock, *, public_url: str) -> None:
        self._clock = clock
        self._public_url = public_url.rstrip("/")

    def check(self, proof: str | None, *, method: str, path: str, access_token: str | None = None) -> DpopProof | None:
        """The verified proof, or None when the request brought none.

        ``access_token`` is the token sent with the proof, if any: the proof must then carry its ``ath``.

        Raises:
            InvalidDpopProof: if a proof came and breaks a rule.
        """
        if proof is None:
            return None
        return verify_proof(
            proof, method=method, uri=self._public_url + path, now=self._clock(), access_token=access_token
        )


def require_key(bound: str | None, proof: DpopProof | None) -> None:
    """The binding rule: a session bound to a key (``bound``, its thumbprint) is used only with a proof by that key.

    Raises:
        InvalidDpopProof: if the session is bound and there is no proof, or it is another key's.
    """
    if bound is None:
        return
    if proof is None:
        raise InvalidDpopProof("This session is bound to a key (DPoP): send a DPoP proof made with that key.")
    if not hmac.compare_digest(proof.jkt, bound):
        raise InvalidDpopProof("The DPoP proof is signed by another key than the one this session is bound to.")


def _key(supporter_id: str, proof: DpopProof) -> str:
    digest = hashlib.sha256(f"{proof.jkt}:{proof.jti}".encode()).hexdigest()
    return names.dpop_proof(supporter_id, digest)


async def watch_unspent(pipe: Pipeline, supporter_id: str, proof: DpopProof) -> None:
    """In a transaction's reads: watch the proof's memory, and refuse it if it was used before.

    Raises:
        InvalidDpopProof: if the proof was used before.
    """
    key = _key(supporter_id, proof)
    await pipe.watch(key)
    if await pipe.exists(key):
        raise InvalidDpopProof(_REPLAYED)


def spend(pipe: Pipeline, supporter_id: str, proof: DpopProof | None) -> None:
    """In a transaction's writes (after :func:`watch_unspent`): remember the proof for its lifetime."""
    if proof is not None:
        pipe.set(_key(supporter_id, proof), b"1", nx=True, ex=_LIFETIME_S)


async def remember(redis: Client, supporter_id: str, proof: DpopProof) -> None:
    """Remember a proof used outside a transaction for its lifetime, once.

    Raises:
        InvalidDpopProof: if the proof was used before.
    """
    if not await redis.set(_key(supporter_id, proof), b"1", nx=True, ex=_LIFETIME_S):
        raise InvalidDpopProof(_REPLAYED)
