"""The HTML rollout report: written after each wave and by `report`, from the journal.

The end-to-end test runs the real command against the simulator: wave 1 fails on one
Deployment (Astro's message carrying a credential), wave 2 starts with its gate skipped,
and the report must show both, with the credential hidden. The others read journals
written through the Journal's own API (tests/report/synthetic.py): 1,000 Deployments
within the size and time limits, a secret that became known after it was stored, idle
stretches drawn as breaks. tests/browser loads these files in a real Chromium.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from simulators import SimHandle

from tests.report.synthetic import START, synthetic_rollout
from tests.rollout.helpers import make_fleet
from upgrade.journal.store import Journal
from upgrade.model.catalog import load_catalog
from upgrade.report.html import GAP_WIDTH, Scale, write_rollout_html
from upgrade.report.rollout_view import rollout_view

SECRET = "s3cr3t-partner-t0ken"


class Page(HTMLParser):
    """What a reader gets from the report: its text, and every bar per Deployment row."""

    def __init__(self, html: str):
        super().__init__()
        self.text: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self.soaks = 0
        self._row: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "g" and a.get("data-deployment"):
            self._row = a["data-deployment"]
            self.rows.setdefault(self._row, [])
        elif tag == "g" and (a.get("class") or "").startswith("bar soak"):
            self.soaks += 1  # a wave's soak: one band across its rows
        elif tag == "g" and (a.get("class") or "").startswith("bar ") and self._row:
            self.rows[self._row].append(a["class"].removeprefix("bar "))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join("".join(self.text).split())


def _render(journal_file: Path, now: datetime | None = None) -> str:
    with Journal.open(journal_file) as j:
        view = rollout_view(j, None, load_catalog(), now or datetime.now(UTC), program="astro-fleet")
    assert view is not None
    return write_rollout_html(journal_file.parent / "report.html", view).read_text("utf-8")


@pytest.mark.slow
def test_a_failed_wave_and_a_skipped_gate_are_shown(tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=4, wave={"parallel": 4, "max_failures": 0},
                       deploy_timeout=5, verify_timeout=5)
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["repos"]["r03"]["deployments"][0]["wave"] = 2
    doc["waves"][2] = {}
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    sim.set_fault(fleet.dep("r01-d0").id,
                  deploy_error=f"registry refused the push (Authorization: Bearer {SECRET})")

    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 4, one.stdout + one.stderr
    written = fleet.root / ".upgrade" / "reports" / "rollout-1.html"
    assert f"HTML report: {written}" in one.stdout
    after_one = Page(written.read_text())
    assert "Wave 1 halted" in after_one.words and "✗ failed" in after_one.words

    two = fleet.invoke("upgrade", "--wave", "2", "--skip-gate", "--reason", "CHG-7 hotfix")
    assert two.returncode == 0, two.stdout + two.stderr
    out = fleet.invoke("report", "--output", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"report: {tmp_path / 'r.html'}"
    html = (tmp_path / "r.html").read_text()
    page = Page(html)

    assert SECRET not in html
    words = page.words
    assert "Gate skipped before wave 2 by" in words and "CHG-7 hotfix" in words
    assert "GATE SKIPPED by" in words  # the annotation on wave 2's timeline
    assert "Wave 1 halted: max_failures tripped" in words
    failure = words.split("✗ r01-d0 (wave 1, 12.1.0 → 12.4.0): ")[1]
    assert failure.startswith("r01-d0: deploy failed: astro deploy"), failure[:300]
    assert "Authorization: Bearer ***" in words
    # The failed Deployment's deploy bar is marked failed (hatched and ✗), not by colour alone.
    assert page.rows["r01-d0"][-1] == "deploy failed"
    assert "✗" in html.split('data-deployment="r01-d0"')[1].split("</g>\n")[0]
    for name in ("r00-d0", "r02-d0", "r03-d0"):
        assert [b.split()[0] for b in page.rows[name]][-3:] == ["commit", "deploy", "verify"]
    # Astro was looked at (the simulator): the matrix says so.
    assert "as Astro reported it at" in words
    assert "astro-fleet upgrade --wave 1" in words  # how to resume


def test_1000_deployments_render_small(tmp_path: Path) -> None:
    journal = synthetic_rollout(tmp_path / "journal.db", 1000, fail_every=25)
    # What rendering costs is a figure of `benchmarks/rollout.py --cpu-breakdown`
    # (write_report), not a limit here: the suite shares the machine. The size is bounded.
    html = _render(journal)
    size = len(html.encode())
    print(f"1,000 Deployments: {size / 1e6:.2f} MB")
    assert size < 2_000_000
    page = Page(html)
    assert len(page.rows) == 1000
    failed = [n for n, bars in page.rows.items() if "deploy failed" in bars]
    assert len(failed) == 20 and all(f"{n} [failed]" in page.words for n in failed)
    assert page.soaks == 1  # wave 1 passed and soaks a day; wave 2 halted
    assert "GATE SKIPPED" in page.words and "Wave 2 halted" in page.words
    assert "s3cr3t-t0ken" not in html  # the Bearer credential of the failures


def test_a_secret_known_only_now_is_hidden_too(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    journal = synthetic_rollout(tmp_path / "journal.db", 4, waves=1)
    with Journal.open(journal) as j:  # a message stored before the value was a known secret
        j.event("note", rollout_id=1, wave=1, deployment_id="dep00001",
                message="pushed with key plainly-stored-42")
    assert "plainly-stored-42" in _render(journal)
    monkeypatch.setenv("PARTNER_API_KEY", "plainly-stored-42")
    html = _render(journal)
    assert "plainly-stored-42" not in html and "pushed with key ***" in html


def test_the_text_alternatives_are_there(tmp_path: Path) -> None:
    html = _render(synthetic_rollout(tmp_path / "journal.db", 12, fail_every=5))
    page = Page(html)
    assert 'role="img"' in html and html.count("<desc id=") == 2
    assert "Wave 2: halted; 6 Deployment(s): 1 failed, 5 ok." in page.words
    # The table repeats every bar in words, and every result has a symbol besides colour.
    assert "deploy 1 min" in page.words and "✓ ok" in page.words and "✗ failed" in page.words
    assert "@media print" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_a_day_of_soak_is_a_break_not_the_whole_axis() -> None:
    t0 = START
    busy = [(t0, t0 + timedelta(minutes=10)),
            (t0 + timedelta(days=1), t0 + timedelta(days=1, minutes=5))]
    scale = Scale(busy, width=900)
    assert len(scale.gaps) == 1 and scale.gaps[0].seconds == pytest.approx(86400 - 600)
    # 15 busy minutes share what the one break leaves of the width.
    assert scale.x(t0 + timedelta(minutes=10)) == pytest.approx((900 - GAP_WIDTH) * 10 / 15)
    assert scale.x(t0 + timedelta(days=1, minutes=5)) == pytest.approx(900)
    assert scale.x(t0 - timedelta(hours=1)) == 0  # clamped


def test_report_refuses_an_unknown_rollout_and_a_fleet_without_journal(tmp_path: Path,
                                                                       sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=1)
    none = fleet.invoke("report", "--offline")
    assert none.returncode == 2 and "no journal yet" in none.stderr
    synthetic_rollout(fleet.journal_file, 2, waves=1)
    wrong = fleet.invoke("report", "--rollout", "9", "--offline")
    assert wrong.returncode == 2
    assert "--rollout 9: no such rollout in the journal (rollouts: 1)" in wrong.stderr
    ok = fleet.invoke("report", "--offline")
    assert ok.returncode == 0 and ok.stdout.strip().endswith("rollout-1.html")
    # Astro out of reach: the report is still written, from the journal, and says so.
    sim.stop()
    unreachable = fleet.invoke("report")
    assert unreachable.returncode == 0, unreachable.stderr
    assert "warning: the version matrix is the journal's: Astro could not be read (ws-1: " \
        in unreachable.stderr
    html = (fleet.root / ".upgrade" / "reports" / "rollout-1.html").read_text()
    assert "Astro could not be read (ws-1: " in Page(html).words
