"""The ``supportgate`` command: ``serve``, ``demo`` and ``admin`` tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import click
import redis
from granian import Granian
from granian.constants import Interfaces
from redis.backoff import NoBackoff
from redis.retry import Retry

from supportgate.catalog.schemas import SupporterStatus
from supportgate.catalog.supporter_csv import ImportReport
from supportgate.demo.seed import DEMO_ORIGINS, seed
from supportgate.errors import SupportgateError
from supportgate.extension_build import (
    Preset,
    build,
    build_test_variant,
    default_source,
    extension_name,
    gate_base_url,
    gate_packages,
)
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.metrics import MULTIPROCESS_ENV, use_multiprocess_dir
from supportgate.services import Services
from supportgate.settings import (
    MASTER_KEY_FILE,
    Settings,
    master_key_file,
    redact_url,
    write_master_key_file,
)
from supportgate.store import EmbeddedStore, Store, open_store
from supportgate.tokens.sealing import MasterKey
from supportgate.tokens.vault import Vault

__all__ = ["main"]

T = TypeVar("T")
_log = logging.getLogger("supportgate.cli")
_ACCESS_LOG_ENV = "SUPPORTGATE_ACCESS_LOG"
_METRICS_DIR = "metrics"
"""The folder of the data dir the workers keep their metrics in, unless PROMETHEUS_MULTIPROC_DIR names one."""


@contextlib.contextmanager
def running_store(settings: Settings) -> Iterator[str]:
    """The store URL to use: the external one (checked), or an embedded one started here."""
    if settings.redis_url is not None:
        _check_reachable(settings.redis_url, settings.store_timeout_seconds)
        yield settings.redis_url
        return
    embedded = EmbeddedStore(settings.ensure_data_dir())
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


def _check_reachable(url: str, timeout: float) -> None:
    try:
        with redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        ) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        raise SupportgateError(f"SUPPORTGATE_REDIS_URL: cannot reach {redact_url(url)}: {exc}") from None


def _with_services(settings: Settings, url: str, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` with the services, once the master key is known to open the store's secrets."""
    master_key = MasterKey(settings.load_master_key())

    async def run() -> T:
        store = await open_store(url)
        # Mail these commands queue is sent by the service's consumers, not here.
        mail = MailQueue(store, mailer_for(settings))
        try:
            services = Services.build(store, settings, mail, master_key)
            await services.vault.check()
            return await work(services)
        finally:
            await store.close()

    return asyncio.run(run())


def _prepare_extension(settings: Settings) -> None:
    """Build (or find) the extension packages for this gate before the workers start; log one line."""
    source = default_source()
    try:
        packages, built = gate_packages(source, settings.ensure_data_dir(), Preset.checked(settings.public_url))
    except SupportgateError as exc:
        _log.warning(
            "the extension packages are not available from this gate (%s); set SUPPORTGATE_EXTENSION_SOURCE "
            "to the extension/ folder to offer them",
            exc,
        )
        return
    _log.info(
        "extension %s for %s %s: %s",
        packages.version,
        settings.public_url,
        "built" if built else "found",
        next(iter(packages.archives.values())).parent,
    )


def _serve(
    settings: Settings, url: str, *, host: str, port: int, workers: int, target: str = "supportgate.app:app_from_env"
) -> None:
    os.environ["SUPPORTGATE_REDIS_URL"] = url
    # Every worker counts into this directory and any of them answers a scrape with the sums;
    # emptied first, so counts of an earlier run are not added in.
    use_multiprocess_dir(Path(os.environ.get(MULTIPROCESS_ENV) or settings.ensure_data_dir() / _METRICS_DIR))
    Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        log_access=False,  # the service writes its own access log (SUPPORTGATE_ACCESS_LOG)
    ).serve()


@click.group()
@click.version_option(package_name="supportgate")
def cli() -> None:
    """supportgate: signed supporter passes, honest ad-block detection and a fair wall."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="Write one JSON line per request to stdout; overrides SUPPORTGATE_ACCESS_LOG (on by default here).",
)
def serve(host: str, port: int, workers: int, access_log: bool | None) -> None:
    """Run the service for production (Granian)."""
    if access_log is not None:
        os.environ[_ACCESS_LOG_ENV] = "on" if access_log else "off"
    elif not os.environ.get(_ACCESS_LOG_ENV, "").strip():
        os.environ[_ACCESS_LOG_ENV] = "on"
    settings = Settings.from_env()

    async def prepare(services: Services) -> None:
        await services.signing_keys.ensure()

    with running_store(settings) as url:
        # Made and checked here, once: a wrong master key is one line, not a failure per worker.
        _with_services(settings, url, prepare)
        _prepare_extension(settings)
        _serve(settings, url, host=host, port=port, workers=workers)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def demo(host: str, port: int) -> None:
    """Run the service with an embedded store, demo data, the demo site and a fresh admin key."""
    base = f"http://{host}:{port}"
    # The demo's pages load gate.js from the public URL: by default, where this process listens.
    if not os.environ.get("SUPPORTGATE_PUBLIC_URL", "").strip():
        os.environ["SUPPORTGATE_PUBLIC_URL"] = base
    settings = Settings.from_env()
    # The demo site's pages are served by this process, so both where it listens and its public
    # URL's origin are the site's origins.
    public = urlsplit(settings.public_url)
    origins = list(dict.fromkeys([base, f"{public.scheme}://{public.netloc}", *DEMO_ORIGINS]))

    async def prepare(services: Services) -> str:
        await seed(services, origins=origins, support_url=f"{settings.public_url}/demo/support")
        await services.api_keys.revoke_named("admin", "demo", actor="cli:demo")
        return (await services.api_keys.create("admin", name="demo", actor="cli:demo")).key

    with running_store(settings) as url:
        key = _with_services(settings, url, prepare)
        _prepare_extension(settings)
        click.echo(
            "\n".join(
                [
                    "",
                    "supportgate demo is running:",
                    f"  service        {base}/",
                    f"  demo site      {base}/demo/",
                    f"  extension      {base}/extension",
                    f"  admin console  {base}/admin/",
                    f"  API docs       {base}/schema",
                    f"  health         {base}/readyz",
                    f"  admin API key  {key}",
                    (
                        "                 (new at every start; try: "
                        f"curl -H 'Authorization: Bearer {key}' {base}/v1/admin/tiers)"
                    ),
                    f"  data           {settings.data_dir}/",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
        _serve(settings, url, host=host, port=port, workers=1, target="supportgate.app:demo_app_from_env")


@cli.group()
def admin() -> None:
    """Administrative tasks."""


@admin.command("create-key")
@click.option("--name", required=True, help="Who or what the key is for; shown in the audit log.")
def create_key(name: str) -> None:
    """Make an admin API key and print it once (only its hash is stored)."""
    settings = Settings.from_env()

    async def make(services: Services) -> str:
        return (await services.api_keys.create("admin", name=name, actor="cli")).key

    with running_store(settings) as url:
        click.echo(_with_services(settings, url, make))


@admin.command("list-keys")
def list_keys() -> None:
    """List the admin API keys: id, name, when made and last used (never a secret)."""
    settings = Settings.from_env()

    async def listed(services: Services) -> str:
        keys = await services.api_keys.list("admin")
        return "\n".join(
            f"{key.id}  {key.created_at:%Y-%m-%d %H:%M}Z  "
            f"{f'{key.last_used_at:%Y-%m-%d %H:%M}Z' if key.last_used_at else 'never used      '}  {key.name}"
            for key in keys
        )

    with running_store(settings) as url:
        click.echo(_with_services(settings, url, listed))


@admin.command("revoke-key")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke the admin API key KEY_ID (from list-keys); refused for the last one."""
    settings = Settings.from_env()

    async def revoke(services: Services) -> str:
        await services.api_keys.revoke("admin", key_id, actor="cli")
        return f"revoked admin key {key_id}"

    with running_store(settings) as url:
        click.echo(_with_services(settings, url, revoke))


@admin.command("rotate-keys")
@click.option("--force", is_flag=True, help="Rotate even if the next key was published under 5.5 minutes ago.")
def rotate_keys(force: bool) -> None:
    """Rotate the signing keys: the published next key starts signing, the old one retires."""
    settings = Settings.from_env()

    async def rotate(services: Services) -> str:
        key_set = await services.key_rotation.rotate(force=force, actor="cli")
        return "\n".join(
            f"{key.state:<9} {key.kid}"
            + (f"  published until {key.retire_until:%Y-%m-%d %H:%M}Z" if key.retire_until else "")
            for key in key_set.keys
        )

    with running_store(settings) as url:
        click.echo(_with_services(settings, url, rotate))


@admin.command("rewrap-secrets")
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file (mode 600) holding the new master key in base64url, instead of SUPPORTGATE_NEW_MASTER_KEY.",
)
def rewrap_secrets(new_key_file: Path | None) -> None:
    """Seal every secret in the store under a new master key; stop the service first.

    The old key is the one the service uses: SUPPORTGATE_MASTER_KEY, else the key file in the data
    dir. The new one is SUPPORTGATE_NEW_MASTER_KEY or --new-key-file; with neither, and the key
    file in use, a new key is made. With the key file in use, the new key replaces it once the store
    is re-wrapped; otherwise set SUPPORTGATE_MASTER_KEY to the new key before starting again.
    Running it again, or after a crash, finishes the job and changes nothing more.
    """
    settings = Settings.from_env()
    if settings.new_master_key is not None and new_key_file is not None:
        raise click.UsageError("give the new master key once: SUPPORTGATE_NEW_MASTER_KEY or --new-key-file")
    new_material = settings.new_master_key
    if new_key_file is not None:
        new_material = master_key_file(new_key_file)
    key_file = None if settings.master_key is not None else settings.ensure_data_dir() / MASTER_KEY_FILE
    old_key = MasterKey(settings.load_master_key())
    pending = key_file.with_name(MASTER_KEY_FILE + ".new") if key_file is not None else None
    if pending is not None:
        # The new key is on disk before the store depends on it: a crash leaves it to be picked up again.
        if new_material is not None:
            write_master_key_file(pending, new_material, replace=True)
        new_material = master_key_file(pending)
    if new_material is None:
        raise click.UsageError("SUPPORTGATE_MASTER_KEY is set: give the new key as SUPPORTGATE_NEW_MASTER_KEY")
    new_key = MasterKey(new_material)

    async def rewrap(store: Store) -> list[str]:
        return await Vault(store, old_key).rewrap(new_key)

    with running_store(settings) as url:
        rewrapped = _with_store(url, rewrap)
    if key_file is not None and pending is not None:
        pending.replace(key_file)
    click.echo(
        f"re-wrapped {len(rewrapped)} secret(s) from master key {old_key.id} to {new_key.id}"
        if rewrapped
        else f"every secret is sealed under master key {new_key.id} already"
    )
    click.echo(
        f"the key file {key_file} now holds master key {new_key.id}"
        if key_file is not None
        else f"set SUPPORTGATE_MASTER_KEY to the new key (id {new_key.id}) before starting the service"
    )


@cli.group()
def supporters() -> None:
    """Supporters in and out as CSV files."""


@supporters.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Write nothing; print what the import would do.")
def import_supporters(file: Path, dry_run: bool) -> None:
    """Import supporters from a CSV FILE (header: email,tier,expires_at,note); no welcome mails are sent."""
    settings = Settings.from_env()

    async def run(services: Services) -> ImportReport:
        with file.open("rb") as source:
            total = services.supporter_csv.count_lines(source)
            with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
                return await services.supporter_csv.import_file(
                    source, actor="cli", dry_run=dry_run, progress=bar.update
                )

    with running_store(settings) as url:
        report = _with_services(settings, url, run)
    for error in report.errors:
        click.echo(f"line {error.line}: {error.detail}", err=True)
    click.echo(
        f"{'would create' if dry_run else 'created'} {report.created}, "
        f"{'would update' if dry_run else 'updated'} {report.updated}, "
        f"unchanged {report.unchanged}, errors {len(report.errors)}"
    )
    if report.errors:
        sys.exit(1)


@supporters.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CSV here, not to stdout.")
@click.option("--tier", help="Only supporters on this tier.")
@click.option("--status", type=click.Choice(["active", "expired", "revoked"]), help="Only supporters in this status.")
@click.option("--q", help="Only supporters whose email or note contains this.")
def export_supporters(out: Path | None, tier: str | None, status: SupporterStatus | None, q: str | None) -> None:
    """Export supporters as CSV, newest first, with the admin list's filters."""
    settings = Settings.from_env()

    async def run(services: Services) -> None:
        rows = await services.supporter_csv.export(tier=tier, status=status, q=q)
        with contextlib.ExitStack() as stack:
            sink = stack.enter_context(out.open("wb")) if out is not None else sys.stdout.buffer
            async for chunk in rows:
                sink.write(chunk)
            sink.flush()

    with running_store(settings) as url:
        _with_services(settings, url, run)


def _with_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


@cli.group()
def extension() -> None:
    """The browser extension."""


@extension.command("build")
@click.option(
    "--source",
    default=Path("extension"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The extension folder: src/ and manifest.<browser>.json.",
)
@click.option(
    "--out",
    default=Path("dist"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the folders and zips go.",
)
@click.option(
    "--test-host",
    "test_hosts",
    multiple=True,
    metavar="PATTERN",
    help="Also build chromium-test/ with this host permission granted at install (automation only).",
)
@click.option(
    "--gate",
    metavar="URL",
    help="Build for this gate: each folder gets a preset.json naming it (the gate's base URL, http or https).",
)
@click.option(
    "--name",
    metavar="NAME",
    help="A branded build: the name the extension shows, and a Firefox id of its own (needs --gate).",
)
def extension_build(source: Path, out: Path, test_hosts: tuple[str, ...], gate: str | None, name: str | None) -> None:
    """Build the extension for Chromium and Firefox: loadable folders and zip files."""
    preset = _preset(gate, name)
    out.mkdir(parents=True, exist_ok=True)
    for built in build(source, out, preset):
        click.echo(f"{built.browser:<9} {built.version}  {built.directory}/  {built.archive}")
    if test_hosts:
        test = build_test_variant(source, out, list(test_hosts), preset)
        click.echo(f"test      {test.version}  {test.directory}/  (not for release)")
    if preset is not None:
        click.echo(f"preset    gate {preset.gate}" + (f", name {preset.name!r}" if preset.name else ""))


def _preset(gate: str | None, name: str | None) -> Preset | None:
    if gate is None:
        if name is not None:
            raise click.BadParameter("a branded build names its gate: give --gate too", param_hint="--name")
        return None
    try:
        base = gate_base_url(gate)
    except SupportgateError as exc:
        raise click.BadParameter(str(exc), param_hint="--gate") from None
    try:
        return Preset(base, None if name is None else extension_name(name))
    except SupportgateError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None


def main() -> None:
    """Entry point: run the CLI, turning known errors into one line on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # Ctrl-C is how the service is stopped: by here the store has been stopped cleanly.
        sys.exit(0)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SupportgateError as exc:
        click.echo(f"supportgate: {exc}", err=True)
        sys.exit(2)
