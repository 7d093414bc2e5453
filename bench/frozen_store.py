"""Decide and an admin write while the store is frozen (SIGSTOP), and the recovery after it, with ``wrk``.

Run with ``uv run python bench/frozen_store.py [--seconds N] [--connections N]``. It starts
``supportgate serve --workers 1`` with an embedded store (as ``bench/http_decide.py`` does), seeds a
site with three free views, a site key and a supporter's pass, and checks both decides answer.
Then it freezes the store process and measures, one after the other:

- ``POST /v1/decide`` for a metered visitor who blocks ads (the meter needs the store) and
  ``POST /v1/decide`` with a valid pass (its revocation cutoff needs the store): p50 and p99,
  and the reason they answer, which must be ``store_unavailable``;
- one admin write, ``POST /v1/admin/tiers``: its status (503) and how long it took;
- after SIGCONT, how long until decide with the pass says ``supporter`` again, with no restart.

It exits 1 when decide's p99 is over 50 ms, the admin write is not a 503 within the store timeout
(2 s, plus 0.1 s to answer), or the service does not recover within 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from http_decide import SITE, Result, admin_key, call, free_port, lua_post, run_wrk, seed, serving

P99_TARGET_MS = 50.0
STORE_TIMEOUT_S = 2.0
RECOVERY_LIMIT_S = 10.0
WRITE_SLACK_S = 0.1  # the 503 itself, after the timeout has fired


def post(base: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any], float]:
    """One POST: status, decoded answer and seconds taken, whatever the status."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw) if raw else {}, time.monotonic() - started


def report(
    before: dict[str, Any],
    results: list[Result],
    reasons: dict[str, Any],
    writes: tuple[int, float, int],
    recovered: float | None,
) -> bool:
    """Print the table; whether a target was missed."""
    write_status, write_seconds, write_after = writes
    print()
    print(f"before the freeze: {before}")
    print(f"{'while frozen':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-2xx':>8}  reason")
    missed = False
    for result in results:
        over = result.p99_ms > P99_TARGET_MS
        missed |= over or result.errors > 0 or reasons[result.name] != "store_unavailable"
        print(
            f"{result.name:<26} {result.rps:>8,.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f}"
            f" {result.max_ms or 0:>8.1f} {result.errors:>8}"
            f"  {reasons[result.name]}{'  MISSED' if over else ''}"
        )
    write_ok = write_status == 503 and write_seconds <= STORE_TIMEOUT_S + WRITE_SLACK_S
    missed |= not write_ok
    print(f"admin write while frozen: {write_status} in {write_seconds * 1000:.0f} ms{'' if write_ok else '  MISSED'}")
    shown = "not within 10 s  MISSED" if recovered is None else f"{recovered * 1000:.0f} ms"
    missed |= recovered is None or write_after != 201
    print(f"after SIGCONT: decide with the pass says supporter again after {shown}; admin write {write_after}")
    print(f"targets: decide p99 at most {P99_TARGET_MS:g} ms, admin 503 within {STORE_TIMEOUT_S:g} s")
    return missed


def main() -> None:
    """Start the service, freeze its store under load, and print what decide and an admin write did."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time measured per request while frozen")
    parser.add_argument("--warmup", type=float, default=2.0, help="time run first, before the freeze, per request")
    parser.add_argument("--connections", type=int, default=64, help="wrk's open connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="supportgate-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with serving(data_dir, free_port(), workers=1) as (base, server):
            site_key, token = seed(base, data_dir)
            admin = {"Authorization": f"Bearer {admin_key(data_dir)}"}
            call(base, "PATCH", f"/v1/admin/sites/{SITE}", {"policy": {"free_views": 3}}, admin)
            time.sleep(5.5)  # the process's cached site runs out
            keyed = {"Authorization": f"Bearer {site_key}", "Content-Type": "application/json"}
            views = {
                "decide, metered visitor": {"site": SITE, "path": "/a", "adblock": "blocked", "visitor": "bench-0001"},
                "decide, with a pass": {"site": SITE, "path": "/a", "adblock": "blocked", "pass": token},
            }
            before = {name: post(base, "/v1/decide", body, keyed)[1].get("reason") for name, body in views.items()}
            for name, body in views.items():  # wrk's connections and the server warm up before the freeze
                script = Path(tmp) / "warm-up.lua"
                script.write_text(lua_post("/v1/decide", body, keyed))
                run_wrk(name, base + "/v1/decide", script, args, args.warmup, server)
            store_pid = int((data_dir / "store" / "store.pid").read_text().strip())
            os.kill(store_pid, signal.SIGSTOP)
            results: list[Result] = []
            reasons: dict[str, Any] = {}
            try:
                for name, body in views.items():
                    script = Path(tmp) / f"{len(results)}.lua"
                    script.write_text(lua_post("/v1/decide", body, keyed))
                    results.append(run_wrk(name, base + "/v1/decide", script, args, args.seconds, server))
                    reasons[name] = post(base, "/v1/decide", body, keyed)[1].get("reason")
                tier = {"id": "frozen", "name": "Frozen", "entitlements": [], "max_devices": 1}
                write_status, _, write_seconds = post(base, "/v1/admin/tiers", tier, admin)
            finally:
                os.kill(store_pid, signal.SIGCONT)
            resumed = time.monotonic()
            recovered: float | None = None
            while time.monotonic() - resumed < RECOVERY_LIMIT_S:
                if post(base, "/v1/decide", views["decide, with a pass"], keyed)[1].get("reason") == "supporter":
                    recovered = time.monotonic() - resumed
                    break
                time.sleep(0.05)
            write_after, _, _ = post(base, "/v1/admin/tiers", tier, admin)
    missed = report(before, results, reasons, (write_status, write_seconds, write_after), recovered)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
