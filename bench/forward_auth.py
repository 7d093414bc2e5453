"""Forward-auth throughput and latency beside decide's, over HTTP, with ``wrk``.

Run with ``uv run python bench/forward_auth.py [--seconds N] [--connections N] [--threads N]``.
Like ``http_decide.py`` (whose service start, seeding and wrk runs it uses), it starts
``supportgate serve --workers 1`` with an embedded store in a temporary data dir, makes a tier, a
site, a site key and a supporter with a pass, and then measures, one after the other:

- ``GET /healthz``: the framework alone, the baseline;
- ``POST /v1/decide`` anonymous (``clear``) and with a valid pass, as ``http_decide.py`` does;
- ``GET /v1/forward-auth`` the same two ways, as nginx's ``auth_request`` asks: the site key and
  id in headers, the page in ``X-Original-URI``, ``sg_adblock`` and ``sg_visitor`` in ``Cookie``,
  the pass in ``Supportgate-Pass``.

It prints requests per second, p50 and p99 latency, the server's CPU time per request, each
request's ratio to ``/healthz`` and forward-auth's to the decide of the same kind. Targets: the
decide targets of ``http_decide.py`` for forward-auth too (0.5x healthz anonymous, 0.4x with a
pass, p99 at most 10 ms). It exits 1 when a target is missed. ``wrk``: ``apt-get install -y wrk``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from http_decide import P99_TARGET_MS, SITE, Result, call, free_port, lua_post, run_wrk, seed, serving

TARGETS = {
    "decide, anonymous": 0.5,
    "decide, with a pass": 0.4,
    "forward-auth, anonymous": 0.5,
    "forward-auth, with a pass": 0.4,
}
SAME_KIND = {"forward-auth, anonymous": "decide, anonymous", "forward-auth, with a pass": "decide, with a pass"}


def lua_get(path: str, headers: dict[str, str]) -> str:
    """A wrk script that sends the same GET, with these headers, every time."""
    lines = ['wrk.method = "GET"', f"wrk.path = {json.dumps(path)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def forward_auth_headers(site_key: str, cookie: str, token: str | None = None) -> dict[str, str]:
    """What nginx's auth subrequest sends (docs/proxy.md), for one reader."""
    headers = {
        "Authorization": f"Bearer {site_key}",
        "X-Supportgate-Site": SITE,
        "X-Original-URI": "/article?page=1",
        "Cookie": cookie,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
    }
    if token is not None:
        headers["Supportgate-Pass"] = token
    return headers


def check_forward_auth(base: str, headers: dict[str, str], reason: str) -> None:
    request = urllib.request.Request(base + "/v1/forward-auth", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        answered = answer.headers["Supportgate-Reason"]
    if answered != reason:
        raise SystemExit(f"forward-auth answered {answered!r}, expected {reason!r}")


def main() -> None:
    """Start the service, seed it, run wrk on each request, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time measured per request")
    parser.add_argument("--warmup", type=float, default=2.0, help="time run first, unmeasured, per request")
    parser.add_argument("--connections", type=int, default=64, help="wrk's open connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk")

    with (
        tempfile.TemporaryDirectory(prefix="sg-bench-") as tmp,
        serving(Path(tmp) / "data", free_port(), workers=1) as served,
    ):
        base, server = served
        site_key, token = seed(base, Path(tmp) / "data")
        key = {"Authorization": f"Bearer {site_key}"}
        anonymous = {"site": SITE, "path": "/article", "adblock": "clear", "visitor": "bench-visitor-1"}
        supporter = {"site": SITE, "path": "/article", "adblock": "blocked", "pass": token}
        for body, reason in ((anonymous, "no_adblock"), (supporter, "supporter")):
            answered = call(base, "POST", "/v1/decide", body, key)["reason"]
            if answered != reason:
                raise SystemExit(f"decide answered {answered!r}, expected {reason!r}")
        forward_anonymous = forward_auth_headers(site_key, "sg_adblock=clear; sg_visitor=bench-visitor-1")
        forward_supporter = forward_auth_headers(site_key, "sg_adblock=blocked", token)
        check_forward_auth(base, forward_anonymous, "no_adblock")
        check_forward_auth(base, forward_supporter, "supporter")
        scripts = {
            "decide, anonymous": lua_post("/v1/decide", anonymous, key),
            "decide, with a pass": lua_post("/v1/decide", supporter, key),
            "forward-auth, anonymous": lua_get("/v1/forward-auth", forward_anonymous),
            "forward-auth, with a pass": lua_get("/v1/forward-auth", forward_supporter),
        }
        runs: list[tuple[str, str, Path | None]] = [("GET /healthz", f"{base}/healthz", None)]
        for index, (name, script) in enumerate(scripts.items()):
            path = Path(tmp) / f"run{index}.lua"
            path.write_text(script)
            runs.append((name, base + ("/v1/decide" if name.startswith("decide") else "/v1/forward-auth"), path))
        results: dict[str, Result] = {}
        for name, url, script_path in runs:
            if args.warmup > 0:
                run_wrk(name, url, script_path, args, args.warmup, server)
            results[name] = run_wrk(name, url, script_path, args, args.seconds, server)

    baseline = results["GET /healthz"].rps
    print(f"\nwrk: {args.connections} connections, {args.threads} threads, {args.seconds:g} s each; 1 worker\n")
    print(
        f"{'request':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs healthz':>11} {'target':>8} "
        f"{'vs decide':>10} {'CPU us/req':>11} {'non-2xx':>8}"
    )
    failed = False
    for result in results.values():
        target = TARGETS.get(result.name)
        ratio = result.rps / baseline
        same = SAME_KIND.get(result.name)
        versus = f"{result.rps / results[same].rps:.2f}x" if same else ""
        ok = (target is None or ratio >= target) and result.p99_ms <= P99_TARGET_MS and result.errors == 0
        failed |= not ok
        print(
            f"{result.name:<26} {result.rps:>9,.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
            f"{ratio:>10.2f}x {'' if target is None else f'{target:.1f}x':>8} {versus:>10} "
            f"{'n/a' if result.cpu_us is None else f'{result.cpu_us:.0f}':>11} {result.errors:>8}"
            f"{'' if ok else '  MISSED'}"
        )
    print(f"\np99 target: at most {P99_TARGET_MS:g} ms at {args.connections} connections")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
