"""Waves 1 → 2 → 3 through the gate: soak, skip-gate, approval, a degradation caught."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from simulators import SimHandle
from support import SampleFleet

from upgrade.journal.store import Journal

# Ten minutes: wave 2 right after wave 1 is refused however slow the machine is. The test
# does not wait them out: it moves the waves' times back (_soak_elapsed).
WAVE1_SOAK = WAVE2_SOAK = 600


def _soak_elapsed(journal_file: Path) -> None:
    """Let the soaks end without waiting for them: every time the journal keeps of the
    passed waves moves back by their soak, as if it had passed. The gate reads nothing
    else (``proceed_after`` against the orchestrator's clock), and the product has no
    clock of its own to drive."""
    back = timedelta(seconds=max(WAVE1_SOAK, WAVE2_SOAK) + 1)
    columns = ("started_at", "finished_at", "passed_at", "proceed_after", "skip_gate_at")
    with closing(sqlite3.connect(journal_file)) as db, db:
        for rowid, *times in db.execute(
                f"SELECT rowid, {', '.join(columns)} FROM waves WHERE status = 'passed'").fetchall():
            moved = [None if t is None else (datetime.fromisoformat(t) - back).isoformat(
                timespec="microseconds") for t in times]
            db.execute(f"UPDATE waves SET {', '.join(f'{c} = ?' for c in columns)} "
                       "WHERE rowid = ?", (*moved, rowid))


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []  # each fixture makes a subclass with its own list

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[type[_Hook]]:
    handler = type("Hook", (_Hook,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret-part"
    yield handler
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_three_waves_through_the_gate(sample_fleet: SampleFleet, sim: SimHandle, webhook) -> None:
    fleet = sample_fleet
    text = fleet.inventory.read_text()
    text = text.replace("soak: 10s", f"soak: {WAVE1_SOAK}s", 1).replace("soak: 10s", f"soak: {WAVE2_SOAK}s")
    # Wave 1's checks get 5 s: the gate's re-verification of a degraded canary fails fast.
    text = text.replace("    verify:\n      checks:", "    verify:\n      timeout: 5\n      checks:", 1)
    # Three waves: the Airflow 3 migration group (wave 4) is left out of this story.
    text = text[:text.index("\n  customer-360:")] + "\n"
    text += f"\nnotifications:\n  webhook:\n    url: {webhook.url}\n    timeout: 5\n"
    fleet.inventory.write_text(text)
    fleet.use_simulator(sim.url)
    assert fleet.seed() == 22

    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 0, one.stdout + one.stderr

    # Right away: wave 1 is soaking.
    early = fleet.invoke("upgrade", "--wave", "2")
    assert early.returncode == 3
    assert "wave 1 is soaking until" in early.stderr and "--skip-gate" in early.stderr

    # An emergency: skip the gate, with a reason; it runs and says so.
    skipped = fleet.invoke("upgrade", "--wave", "2", "--skip-gate", "--reason", "CVE-2026-1 hotfix")
    assert skipped.returncode == 0, skipped.stderr
    assert "GATE SKIPPED for wave 2" in skipped.stdout and "CVE-2026-1 hotfix" in skipped.stdout

    _soak_elapsed(fleet.root / ".upgrade" / "journal.db")
    status = json.loads(fleet.invoke("status", "--json").stdout)
    proceed = max(datetime.fromisoformat(w["proceed_after"]) for w in status["rollouts"][0]["waves"])
    assert proceed < datetime.now(UTC)  # both soaks are over
    # Wave 3 requires an approval. (partner-feeds is already past its target: refused by
    # the plan, so each run of wave 3 leaves it out.)
    leave_out = ("--limit", "!partner-feeds-prod")
    unapproved = fleet.invoke("upgrade", "--wave", "3", *leave_out)
    assert unapproved.returncode == 3
    assert "wave 3 requires an approval" in unapproved.stderr
    approve = fleet.invoke("approve", "--wave", "3", "--reason", "CHG-7 approved by CAB")
    assert approve.returncode == 0, approve.stderr

    # A wave-1 canary degrades during soak: the gate verifies it again and refuses.
    sim.update_deployment("cm1salesdev0001", status="UNHEALTHY")
    degraded = fleet.invoke("upgrade", "--wave", "3", *leave_out)
    assert degraded.returncode == 3, degraded.stdout + degraded.stderr
    assert "no longer pass verification" in degraded.stderr and "sales-etl-dev" in degraded.stderr
    assert sim.deployment("cm1salesprd0003")["deploy_count"] == 0  # nothing of wave 3 ran

    sim.update_deployment("cm1salesdev0001", status="HEALTHY")
    three = fleet.invoke("upgrade", "--wave", "3", *leave_out)
    assert three.returncode == 0, three.stdout + three.stderr
    assert "rollout 1 completed" in three.stdout
    # The skip is shown in every later report: the recap, the Markdown, the status.
    assert "GATE SKIPPED for wave 2" in three.stdout
    markdown = (fleet.root / ".upgrade" / "reports" / "rollout-1-wave-3.md").read_text()
    assert "GATE SKIPPED for wave 2" in markdown and "CVE-2026-1 hotfix" in markdown
    assert "- approved by " in markdown and ": CHG-7 approved by CAB\n" in markdown
    # Who ran wave 3: the refused tries started nothing; the run that passed did.
    assert markdown.count("\n- run by ") == 1
    wave2 = (fleet.root / ".upgrade" / "reports" / "rollout-1-wave-2.md").read_text()
    assert re.search(r"^- GATE SKIPPED by \S+ at \S+: CVE-2026-1 hotfix$", wave2, re.M), wave2
    status = json.loads(fleet.invoke("status", "--json").stdout)
    waves = {w["wave"]: w for w in status["rollouts"][0]["waves"]}
    assert waves[2]["skip_gate"]["reason"] == "CVE-2026-1 hotfix"
    assert waves[3]["approval"]["reason"] == "CHG-7 approved by CAB"
    assert all(w["status"] == "passed" for w in waves.values())

    # The webhook heard the story, and its secret URL never reached the output.
    events = [m.get("event") for m in webhook.received]
    assert events.count("wave_started") == 3 and events.count("wave_passed") == 3
    assert events.count("gate_refused") == 3
    # ...while the journal kept none of the refusals: a refused command changes nothing.
    with Journal.open(fleet.root / ".upgrade" / "journal.db") as journal:
        assert not [e for e in journal.events(None) if e.kind == "gate_refused"]
    for out in (one, early, skipped, unapproved, degraded, three):
        assert "secret-part" not in out.stdout + out.stderr
