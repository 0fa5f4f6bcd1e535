"""A real Apache Airflow on 127.0.0.1 for the contract tests: start it, control it, stop it.

``scripts/airflow-test-server.sh install VERSION`` builds the cached venv (pinned closure);
:class:`AirflowServer` starts that Airflow in a temp directory with SQLite, on a free
loopback port, with the DAGs of ``tests/contract/dags`` plus two broken DAG files (a syntax
error and a missing module), and stops every process it started by pid (each component runs
in its own process group, and the children Airflow moves to groups of their own, such as
2.x's DAG processor manager, are tracked by pid and stopped too).

Airflow 2 runs webserver + scheduler + triggerer (as Astro's Airflow 2 Deployments: no
standalone DAG processor); Airflow 3 runs api-server + scheduler + dag-processor +
triggerer with the SimpleAuthManager, and the token comes from ``POST /auth/token``. Astro
accepts ``Authorization: Bearer <API token>`` on Airflow 2 as well; plain Airflow 2 has no
bearer auth backend, so ``support/astro_bearer_auth.py`` stands in for Astro's (one fixed
token, everything else is Airflow's own: refusals, the 401 body, the API).

Log serving is off (``--skip-serve-logs``): Airflow would bind it to every interface.

Run by hand (prints the URL, writes the token to DIR/token, keeps running until Ctrl-C)::

    .venv/bin/python tests/contract/server.py 3.0.6
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = ROOT / "scripts" / "airflow-test-server.sh"
VERSIONS = ("2.10.5", "3.0.6")
# Start-up has limits of its own, apart from pytest-timeout's per-test limit (the contract
# tests time the test body only: tests/contract/conftest.py). They are generous: they only
# end a start-up that is stuck, and on two cores shared with `make test` one `airflow db
# migrate` of 2.10.5 has taken ~70 s and parsing the DAGs minutes.
COMMAND_TIMEOUT = 600.0  # s: one `airflow db migrate` or `airflow users create`
START_TIMEOUT = 300.0  # s: from starting the components until every one is healthy
PARSE_TIMEOUT = 300.0  # s: until the DAGs are parsed and the broken files reported

BROKEN_DAGS = {
    # Airflow 2 only parses files that mention both "airflow" and "dag" (safe mode).
    "broken_syntax.py": "# An Airflow DAG file with a syntax error.\nfrom airflow import DAG\n"
                        "def broken(:\n    pass\n",
    "broken_import.py": "# An Airflow DAG file whose import fails.\nfrom airflow import DAG\n"
                        "import no_such_module_for_the_canary\n",
}


def venv_for(version: str) -> Path:
    """The cached venv of ``version``, installed first if it is not there yet."""
    out = subprocess.run(["bash", str(SCRIPT), "install", version], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"installing Airflow {version} failed:\n{out.stderr}")
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    return Path(out.stdout.strip().splitlines()[-1])


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (from /proc), whatever its process group."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command may hold spaces and parentheses: fields start after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AirflowServer:
    """One real Airflow and what a client needs to reach it."""

    version: str
    venv: Path
    dir: Path
    port: int = 0
    token: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Descendants seen before a component was signalled: Airflow 2 puts its DAG processor
    # manager in a process group of its own, which a group kill does not reach.
    strays: set[int] = field(default_factory=set)

    @property
    def major(self) -> int:
        """2 or 3."""
        return int(self.version.split(".")[0])

    @property
    def components(self) -> tuple[str, ...]:
        """The processes this Airflow runs."""
        if self.major == 2:
            return ("webserver", "scheduler", "triggerer")
        return ("api-server", "scheduler", "dag-processor", "triggerer")

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``: the web UI's root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Airflow API URL as Astro gives it: no scheme, ending in ``/api/v1|v2``."""
        return f"127.0.0.1:{self.port}/api/v{1 if self.major == 2 else 2}"

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT/api/vN``."""
        return f"http://{self.api_url}"

    @property
    def health_url(self) -> str:
        """The unauthenticated health endpoint."""
        return self.base + ("/health" if self.major == 2 else "/monitor/health")

    @property
    def dags(self) -> Path:
        """The DAGs folder the server parses."""
        return self.dir / "dags"

    # ----------------------------------------------------------------------- lifecycle

    def env(self) -> dict[str, str]:
        """The environment every component runs with (Airflow's settings)."""
        home = self.dir / "home"
        env = {
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # New and changed DAG files are seen within seconds, not Airflow's 5 minutes.
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        }
        if self.major == 2:
            env.update({
                "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
                "AIRFLOW__API__AUTH_BACKENDS": "astro_bearer_auth",
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": "contract-tests",
                "AIRFLOW__WEBSERVER__BASE_URL": self.root,
                "AIRFLOW_TEST_API_TOKEN": self.token,
                "PYTHONPATH": str(HERE / "support"),
            })
        else:
            env.update({
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.dir / "passwords.json"),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__BASE_URL": self.root,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.root}/execution/",
            })
        return env

    def _secret(self, name: str) -> str:
        path = self.dir / f"{name}.secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    def start(self) -> AirflowServer:
        """Prepare the home, migrate the database, start every component, wait for health."""
        began = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "home").mkdir(exist_ok=True)
        shutil.copytree(HERE / "dags", self.dags, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name, text in BROKEN_DAGS.items():
            (self.dags / name).write_text(text)
        self.port = free_port()
        password = secrets.token_urlsafe(16)
        if self.major == 2:
            self.token = secrets.token_urlsafe(24)
        else:
            (self.dir / "passwords.json").write_text(json.dumps({"admin": password}))
        self._airflow("db", "migrate")
        if self.major == 2:
            self._airflow("users", "create", "-u", "admin", "-p", password, "-r", "Admin",
                          "-e", "admin@example.invalid", "-f", "Contract", "-l", "Tests")
        self.timings["prepare"] = time.monotonic() - began
        for name in self.components:
            self.start_component(name)
        self.wait_for(lambda h: all(self._component_ok(h, c) for c in self.health_parts()),
                      START_TIMEOUT, "every component healthy")
        if self.major == 3:
            resp = httpx.post(f"{self.root}/auth/token",
                              json={"username": "admin", "password": password}, timeout=30)
            resp.raise_for_status()
            self.token = resp.json()["access_token"]
        self.timings["start"] = time.monotonic() - began
        return self

    def health_parts(self) -> tuple[str, ...]:
        """The /health entries this Airflow's components report."""
        parts = ("scheduler", "triggerer")
        return (*parts, "dag_processor") if self.major == 3 else parts

    @staticmethod
    def _component_ok(health: dict[str, Any], part: str) -> bool:
        return (health.get(part) or {}).get("status") == "healthy"

    def _airflow(self, *args: str) -> None:
        out = subprocess.run([str(self.venv / "bin" / "airflow"), *args], env=self.env(),
                             cwd=self.dir, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                             check=False)
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args[:2])} failed ({out.returncode}):\n"
                               f"{out.stdout[-2000:]}\n{out.stderr[-4000:]}")

    def _argv(self, name: str) -> list[str]:
        airflow = str(self.venv / "bin" / "airflow")
        if name in ("webserver", "api-server"):
            argv = [airflow, name, "-H", "127.0.0.1", "-p", str(self.port)]
            return argv + (["-w", "1"] if name == "api-server" else [])
        if name in ("scheduler", "triggerer"):
            return [airflow, name, "--skip-serve-logs"]
        return [airflow, name]

    def start_component(self, name: str) -> None:
        """Start one component in its own process group; its output goes to DIR/NAME.log."""
        log = (self.dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            self._argv(name), env=self.env(), cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()

    def kill(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to the component's main process only (as a crash or a stop would)."""
        self.strays |= _descendants(self.procs[name].pid)
        self.procs[name].send_signal(sig)

    def wait_exit(self, name: str, timeout: float = 60.0) -> int:
        """Wait for the component's main process to exit; then end what it left behind."""
        code = self.procs[name].wait(timeout)
        self._end_group(self.procs[name].pid)
        self._end_strays()
        return code

    def stop(self) -> None:
        """Stop every component by its process group (pid), SIGTERM then SIGKILL, and every
        descendant that left its group."""
        for proc in self.procs.values():
            self.strays |= _descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            self._end_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self._end_strays()
        self.procs.clear()

    @staticmethod
    def _end_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def _end_strays(self) -> None:
        """SIGKILL the recorded descendants still running Airflow (by pid, not by name)."""
        for pid in sorted(self.strays):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"airflow" in command:  # still ours, not a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.strays.clear()

    # ------------------------------------------------------------------------ looking

    def health(self) -> dict[str, Any]:
        """The health document (no auth needed on either major)."""
        return httpx.get(self.health_url, timeout=10).json()

    def wait_for(self, ready: Callable[[dict[str, Any]], bool], timeout: float,
                 what: str) -> dict[str, Any]:
        """Poll the health document until ``ready(health)``; RuntimeError after ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None and name in ("webserver", "api-server"):
                    raise RuntimeError(f"Airflow {self.version} {name} exited "
                                       f"{proc.returncode}:\n{self.log_tail(name)}")
            try:
                last = self.health()
                if ready(last):
                    return last
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            time.sleep(0.5)
        raise RuntimeError(f"Airflow {self.version}: not {what} within {timeout:.0f} s; "
                           f"last health: {last!r}")

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """An authenticated request to the API (for test set-up, not under test)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def import_error_files(self) -> set[str]:
        """The files Airflow reports import errors for now."""
        body = self.api("GET", "/importErrors", params={"limit": 100}).json()
        return {e["filename"] for e in body["import_errors"]}

    def wait_for_import_errors(self, files: set[str], timeout: float = PARSE_TIMEOUT) -> None:
        """Wait until Airflow reports exactly ``files`` as broken (absolute paths)."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = self.import_error_files()
            if seen == files:
                return
            time.sleep(1)
        raise RuntimeError(f"Airflow {self.version}: import errors {sorted(seen)}, "
                           f"expected {sorted(files)} within {timeout:.0f} s")

    def wait_for_dag(self, dag_id: str, timeout: float = PARSE_TIMEOUT) -> dict[str, Any]:
        """Wait until the DAG is parsed and known to the API."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.api("GET", f"/dags/{dag_id}")
            if resp.status_code == 200:
                return resp.json()
            time.sleep(1)
        raise RuntimeError(f"Airflow {self.version}: DAG {dag_id} not parsed within {timeout} s")

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of a component's log."""
        path = self.dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running(version: str, directory: Path) -> Iterator[AirflowServer]:
    """A started server that is stopped (by pid) however the block ends."""
    began = time.monotonic()
    venv = venv_for(version)
    installed = time.monotonic() - began
    server = AirflowServer(version, venv, directory)
    server.timings["install"] = installed
    try:
        server.start()
        yield server
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    """``server.py VERSION [DIR]``: start one Airflow and keep it until Ctrl-C."""
    import tempfile

    version = argv[0] if argv else VERSIONS[-1]
    where = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix=f"airflow-{version}-"))
    with running(version, where) as server:
        print(f"Airflow {version} at {server.root} (API {server.base}), dir {server.dir}")
        (server.dir / "token").write_text(server.token)
        print(f"token in {server.dir / 'token'}")
        print(f"timings: {', '.join(f'{k} {v:.1f} s' for k, v in server.timings.items())}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
