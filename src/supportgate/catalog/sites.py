"""Sites: the publishers that gate their pages, with their origins and policy."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.api_keys import drop_site_keys, site_key_ids
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.policy import Policy, check_policy
from supportgate.catalog.records import create_record
from supportgate.catalog.schemas import Site, SiteIn, SitePatch
from supportgate.clock import Clock
from supportgate.errors import BadRequest, NotFound, validation_detail
from supportgate.store import Store, begin, names, texts

__all__ = ["SiteService", "normalise_origin"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Site).decode
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FIRST_PARTY_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/")
"""One or more path segments of unreserved characters, none starting with a dot (so no ``..``), and a final ``/``."""


def normalise_origin(origin: str, *, field: str) -> str:
    """``scheme://host[:port]`` in canonical form; BadRequest naming ``field`` otherwise."""
    try:
        parts = urlsplit(origin.strip())
        # Both parse on use: an out-of-range port, or a bracketed host that is no IPv6 address.
        port, hostname = parts.port, parts.hostname
    except ValueError:
        parts, port, hostname = urlsplit(""), -1, None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not hostname
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "*" in parts.netloc
        or port == -1
    ):
        raise BadRequest(
            f"{field}: {origin!r} is not an origin such as https://news.example (scheme, host, optional port)"
        )
    host = hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _first_party_url(url: str, origins: list[str]) -> str:
    """``url`` as ``<one of origins>/<path>/``, canonical; BadRequest naming ``policy.first_party_url`` otherwise.

    The path must be the site's own proxy's prefix for the gate: at least one segment, ending in
    ``/``, with no query, fragment, credentials, dot segments or characters that need escaping.
    """
    field = "policy.first_party_url"
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith(("?", "#")) or not _FIRST_PARTY_PATH.fullmatch(parts.path):
        raise BadRequest(
            f"{field}: {url!r} is not a URL such as https://news.example/sg/ (the path where the site's"
            " proxy serves the gate: one or more segments ending in '/', no query or fragment)"
        )
    origin = normalise_origin(f"{parts.scheme}://{parts.netloc}", field=field)
    if origin not in origins:
        raise BadRequest(f"{field}: {url!r} is not on one of the site's origins ({', '.join(origins)})")
    return origin + parts.path


def _with_first_party(policy: Policy, origins: list[str]) -> Policy:
    """``policy`` with its first-party URL checked against ``origins`` and made canonical."""
    if policy.first_party_url is None:
        return policy
    return msgspec.structs.replace(policy, first_party_url=_first_party_url(policy.first_party_url, origins))


def _origins(values: list[str]) -> list[str]:
    return list(dict.fromkeys(normalise_origin(v, field=f"origins[{i}]") for i, v in enumerate(values)))


class SiteService:
    """Creates, reads and changes sites."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(self, data: SiteIn, *, actor: str) -> Site:
        """Add a site; Conflict if the id is taken."""
        now = self._clock()
        origins = _origins(data.origins)
        site = Site(
            id=data.id,
            name=data.name,
            origins=origins,
            policy=_with_first_party(check_policy(data.policy), origins),
            created_at=now,
            updated_at=now,
        )
        await create_record(
            self._store,
            self._audit,
            kind="site",
            record_id=data.id,
            record=site,
            key=names.site(data.id),
            index=names.sites(),
            at=now,
            actor=actor,
        )
        return site

    async def get(self, site_id: str) -> Site:
        """One site; NotFound if there is none."""
        raw = await self._store.redis.get(names.site(site_id))
        if raw is None:
            raise NotFound(f"There is no site {site_id!r}.")
        return _decode(raw)

    async def list(self) -> list[Site]:
        """Every site, by id."""
        redis = self._store.redis
        ids = texts(await redis.zrange(names.sites(), 0, -1))
        raws = await redis.mget([names.site(i) for i in ids]) if ids else []
        return [_decode(raw) for raw in raws if raw is not None]

    async def update(self, site_id: str, patch: SitePatch, *, actor: str) -> Site:
        """Change the fields given; ``policy`` is merged field by field into the current one."""
        key = names.site(site_id)
        now = self._clock()

        async def change(pipe: Pipeline) -> Site:
            raw = await pipe.get(key)
            if raw is None:
                raise NotFound(f"There is no site {site_id!r}.")
            before = _decode(raw)
            changes: dict[str, Any] = {}
            if isinstance(patch.name, str):
                changes["name"] = patch.name
            if isinstance(patch.origins, list):
                changes["origins"] = _origins(patch.origins)
            if isinstance(patch.policy, dict):
                changes["policy"] = _merge_policy(before.policy, patch.policy)
            if changes.keys() & {"origins", "policy"}:
                # New origins must still hold the first-party URL, and a new URL must be on them.
                changes["policy"] = _with_first_party(
                    changes.get("policy", before.policy), changes.get("origins", before.origins)
                )
            after = msgspec.structs.replace(before, **changes, updated_at=now)
            begin(pipe)
            pipe.set(key, _encode(after))
            self._audit.record(
                pipe, at=now, actor=actor, action="site.update", target=f"site:{site_id}", before=before, after=after
            )
            return after

        return await self._store.atomically(change, key)

    async def delete(self, site_id: str, *, actor: str) -> None:
        """Remove a site and revoke its keys in one step; then delete its traffic (stats, reports, meters).

        The gate keeps a site and a key check for its cache's lifetime, so decisions about the
        site stop within that time. The traffic lives under the site's own hash tag, apart from
        the catalog, so it goes in a second step.

        Raises:
            NotFound: if there is no such site.
        """
        key = names.site(site_id)
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            raw = await pipe.get(key)
            if raw is None:
                raise NotFound(f"There is no site {site_id!r}.")
            before = _decode(raw)
            key_ids = await site_key_ids(pipe, site_id)
            begin(pipe)
            pipe.delete(key)
            pipe.zrem(names.sites(), site_id)
            drop_site_keys(pipe, key_ids)
            self._audit.record(
                pipe,
                at=now,
                actor=actor,
                action="site.delete",
                target=f"site:{site_id}",
                before={**msgspec.to_builtins(before), "keys_revoked": key_ids},
            )

        await self._store.atomically(change, key, names.site_keys())
        redis = self._store.redis
        doomed = [name async for name in redis.scan_iter(match=names.site_traffic(site_id), count=1000)]
        for start in range(0, len(doomed), 500):
            await redis.delete(*doomed[start : start + 500])


def _merge_policy(current: Policy, changes: dict[str, Any]) -> Policy:
    merged = {**msgspec.to_builtins(current), **changes}
    try:
        return check_policy(msgspec.convert(merged, Policy, strict=True))
    except msgspec.ValidationError as exc:
        raise BadRequest(validation_detail(str(exc), root="policy")) from None
