"""Load and startup benchmark for the Astro simulator (not part of the test suite).

1. Status polling: 200 concurrent keep-alive clients, in a separate process
   from the server, each GET a Deployment from the platform API 10 times a
   second for ~10 s (loopback only, bounded in count and time). Prints median,
   p95, p99, total requests, errors and the median's ratio to the 5 ms limit.
2. ``astro-sim`` startup: median of 20 runs of ``astro-sim --help`` and of
   ``astro-sim deployment inspect <id> -o json``, against the 100 ms limit,
   with ``python -c pass`` timed the same way as the peer.

Usage: .venv/bin/python benchmarks/sim_load.py [--clients 200] [--rate 10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrade.sim import lifecycle  # noqa: E402 - after the path set-up above

LATENCY_LIMIT_MS = 5.0
STARTUP_LIMIT_MS = 100.0
DEPLOYMENT = "bench-1"


# ------------------------------------------------------------------ client side
async def _client(
    host: str,
    port: int,
    request: bytes,
    rate: float,
    stop_at: float,
    offset: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        return
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    next_at = loop.time() + offset
    try:
        while True:
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            if time.monotonic() >= stop_at:
                break
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            elapsed = (time.perf_counter() - start) * 1000.0
            if not head.startswith(b"HTTP/1.1 200") or b'"status"' not in body:
                errors.append(head.split(b"\r\n", 1)[0].decode())
            else:
                latencies.append(elapsed)
            next_at = max(next_at + interval, loop.time())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"io: {exc!r}")
    finally:
        writer.close()


async def _load(url: str, token: str, clients: int, rate: float, seconds: float) -> dict:
    host, port = url[len("http://") :].rsplit(":", 1)
    path = f"/v1/organizations/org-sim/deployments/{DEPLOYMENT}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    tasks = [
        _client(host, int(port), request, rate, stop_at, (i / clients) / rate, latencies, errors)
        for i in range(clients)
    ]
    await asyncio.gather(*tasks)
    return {"latencies": latencies, "errors": errors}


def client_main(args: argparse.Namespace) -> None:
    """Runs in the load-generator process; prints JSON results."""
    result = asyncio.run(
        _load(args.url, os.environ["ASTRO_API_TOKEN"], args.clients, args.rate, args.seconds)
    )
    json.dump(result, sys.stdout)


# ------------------------------------------------------------------ orchestration
def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100.0 * len(ordered)) - 1))
    return ordered[index]


def _time_runs(argv: list[str], env: dict[str, str], runs: int = 20) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        samples.append((time.perf_counter() - start) * 1000.0)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_mode:
        client_main(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        state = Path(tmp) / "state"
        info = lifecycle.start(state, time_scale=1.0)
        try:
            lifecycle.seed(
                info.url,
                [
                    {
                        "id": DEPLOYMENT,
                        "name": "bench",
                        "workspace_id": "ws-1",
                        "runtime_version": "12.4.0",
                    }
                ],
            )
            env = {**os.environ, **lifecycle.sim_env(info.url)}
            print(
                f"load: {args.clients} clients x {args.rate:g} req/s for {args.seconds:g} s "
                f"against {info.url} (server pid {info.pid})"
            )
            load = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--client-mode",
                    "--url",
                    info.url,
                    "--clients",
                    str(args.clients),
                    "--rate",
                    str(args.rate),
                    "--seconds",
                    str(args.seconds),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=args.seconds + 120,
            )
            result = json.loads(load.stdout)
            lat = result["latencies"]
            median = statistics.median(lat) if lat else float("nan")
            print(f"  requests ok      {len(lat)}")
            print(
                f"  errors           {len(result['errors'])}"
                + (f"  e.g. {result['errors'][:3]}" if result["errors"] else "")
            )
            print(f"  achieved rate    {len(lat) / args.seconds:.0f} req/s")
            print(f"  median latency   {median:.2f} ms")
            print(f"  p95 latency      {_percentile(lat, 95):.2f} ms")
            print(f"  p99 latency      {_percentile(lat, 99):.2f} ms")
            print(f"  median / 5 ms    {median / LATENCY_LIMIT_MS:.2f}")

            astro = str(Path(sys.executable).parent / "astro-sim")
            help_ms = _time_runs([astro, "--help"], env)
            inspect_ms = _time_runs(
                [
                    astro,
                    "deployment",
                    "inspect",
                    DEPLOYMENT,
                    "-o",
                    "json",
                    "--workspace-id",
                    "ws-1",
                ],
                env,
            )
            peer_ms = _time_runs([sys.executable, "-c", "pass"], env)
            print("startup (median of 20 runs):")
            for label, ms in (
                ("astro-sim --help", help_ms),
                ("astro-sim deployment inspect", inspect_ms),
                ("python -c pass (peer)", peer_ms),
            ):
                print(f"  {label:<30} {ms:6.1f} ms   ratio to 100 ms {ms / STARTUP_LIMIT_MS:.2f}")
            print(f"  inspect / python -c pass       {inspect_ms / peer_ms:.2f}")
        finally:
            lifecycle.stop(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
