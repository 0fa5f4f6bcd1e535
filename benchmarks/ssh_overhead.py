"""Per-command overhead of an SSH runner (not part of the test suite).

Starts the loopback test sshd (scripts/sshd-test-server.sh) and measures, in this process:

1. ``SSHHost.run(["true"])`` over the pooled connection: median and p95 in ms;
2. the peers: ``LocalHost.run(["true"])`` (a local process group, same process tree) and a
   bare paramiko channel running ``true`` on the same sshd (the floor SSH itself sets);
3. a new connection (TCP, key exchange, authentication) plus its first command;
4. throughput of ``SSHHost.run(["true"])`` from 1 and from 10 threads sharing one
   connection, in commands per second, and how often sshd briefly refused a session.

Usage: .venv/bin/python benchmarks/ssh_overhead.py [--runs 300] [--threads 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrade.config.runners import Runner  # noqa: E402
from upgrade.hosts.host import LocalHost  # noqa: E402 - after the path set-up above
from upgrade.hosts.ssh import SSHHost  # noqa: E402

SCRIPT = ROOT / "scripts" / "sshd-test-server.sh"


def _times(call: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(name: str, samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"{name:<34} median {statistics.median(samples):6.2f} ms   p95 {p95:6.2f} ms"


def _throughput(host: SSHHost, threads: int, per_thread: int) -> float:
    def work() -> None:
        for _ in range(per_thread):
            assert host.run(["true"], cwd="/", timeout=30).ok

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ssh-bench-") as tmp:
        subprocess.run(["bash", str(SCRIPT), "install"], check=True)
        started = subprocess.run(["bash", str(SCRIPT), "start", tmp], check=True,
                                 capture_output=True, text=True)
        env = dict(line.split("=", 1) for line in started.stdout.split())
        try:
            port = int(env["SSHD_PORT"])
            known = Path(tmp) / "known_hosts"
            pub = Path(env["SSHD_HOST_KEY_PUB"]).read_text().split()
            known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
            runner = Runner("bench", host="127.0.0.1", port=port, user=env["SSHD_USER"],
                            key_file=Path(env["SSHD_KEY"]))
            host = SSHHost(runner, known_hosts_file=known)
            local = LocalHost()

            for _ in range(20):  # connect and warm up both sides
                host.run(["true"], cwd="/", timeout=30)
                local.run(["true"], cwd="/", timeout=30)
            ssh = _times(lambda: host.run(["true"], cwd="/", timeout=30), args.runs)
            loc = _times(lambda: local.run(["true"], cwd="/", timeout=30), args.runs)
            transport = host._connection().transport  # the same pooled connection

            def bare() -> None:
                channel = transport.open_session()
                channel.exec_command("true")
                channel.recv_exit_status()
                channel.close()

            floor = _times(bare, args.runs)
            def first_command() -> None:  # a new connection: TCP, key exchange, auth, 1 run
                fresh = SSHHost(runner, known_hosts_file=known)
                fresh.run(["true"], cwd="/", timeout=30)
                fresh.close()

            connect = _times(first_command, 20)
            one = _throughput(host, 1, args.runs)
            many = _throughput(host, args.threads, max(1, args.runs // args.threads) * 2)
            print(f"sshd on 127.0.0.1:{port}, {args.runs} runs each")
            print(_summary("SSHHost.run(['true'])", ssh))
            print(_summary("LocalHost.run(['true']) (peer)", loc))
            print(_summary("bare paramiko channel 'true'", floor))
            print(_summary("new connection + first command", connect))
            print(f"{'overhead vs LocalHost':<34} {statistics.median(ssh) / statistics.median(loc):6.2f}x"
                  f"   vs bare channel {statistics.median(ssh) / statistics.median(floor):.2f}x")
            print(f"{'throughput, 1 thread':<34} {one:8.0f} commands/s")
            print(f"{f'throughput, {args.threads} threads, 1 connection':<34} {many:8.0f} "
                  f"commands/s ({many / one:.1f}x); connections opened: "
                  f"{host.connections_opened}; session opens sshd refused and we retried: "
                  f"{host.sessions_refused}")
            host.close()
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", tmp], check=False)


if __name__ == "__main__":
    main()
