"""journal.export / journal.import: SQLite to PostgreSQL and back is the same journal; an
import goes into an empty journal only, whole or not at all."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.journal.helpers import TARGET, FakeClock, V, entries
from upgrade.config.settings import JournalSettings
from upgrade.errors import EXIT_INPUT, InputError, JournalError
from upgrade.journal.configured import open_journal
from upgrade.journal.schema import SCHEMA_VERSION
from upgrade.journal.store import Journal
from upgrade.journal.transfer import export_journal, import_journal

COMMAND = "invoke journal.import"


def fill(j: Journal) -> None:
    """A journal with every kind of row: two rollouts, waves, gates, failures, marks."""
    old = j.start_rollout("12.3", V("12.3.1"), "inventory.yaml", "dan@ops")
    j.ensure_deployments(old.id, 1, entries(["a", "b"], to=V("12.3.1")))
    j.transition(old.id, "a", "deploying", count_deploy=True)
    j.transition(old.id, "a", "deployed")
    j.abandon_rollout(old.id, "dan@ops", "12.3.1 yanked")
    r = j.start_rollout("12.4", TARGET, "inventory.yaml", "erin@ops",
                        pins={"12.4": TARGET, "3.1": V("3.1-12")})
    j.ensure_deployments(r.id, 1, entries(["b", "a", "c"]))
    j.start_wave(r.id, 1, soak_seconds=600, budget={"max_failures": 1})
    j.set_baseline(r.id, "a", {"import_errors": ["dags/x.py"]})
    for dep in ("a", "b"):
        for state in ("rendered", "committed", "deploying", "deployed", "verified"):
            j.transition(r.id, dep, state, count_deploy=state == "deploying",
                         data={"step": state})
    j.transition(r.id, "c", "failed", error="astro deploy exited 1: ünïcode ✓")
    j.finish_wave(r.id, 1, "halted", reason="1 failure", budget={"failed": 1})
    j.record_approval(r.id, 2, "frank@ops", "canary fine")
    j.record_skip_gate(r.id, 2, "frank@ops", "hotfix")
    j.event("note", message="paused for the weekend", data={"until": "monday"})


def everything(j: Journal) -> Any:
    return (j.rollouts(), [j.waves(r.id) for r in j.rollouts()],
            [j.deployments(r.id) for r in j.rollouts()], j.events(None), j.high_water())


def rows_of(file: Path) -> list[str]:
    return file.read_text("utf-8").splitlines()[1:]


def test_sqlite_to_postgresql_and_back_is_the_same_journal(
        tmp_path: Path, postgres, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    local = JournalSettings(tmp_path / "laptop" / ".upgrade")
    team = JournalSettings(tmp_path / "ci" / ".upgrade", postgres.url(postgres.new_schema()))
    back = JournalSettings(tmp_path / "again" / ".upgrade")
    with open_journal(local, clock=FakeClock()) as j:
        fill(j)
        original = everything(j)

    first = export_journal(local, tmp_path / "journal.jsonl")
    imported = import_journal(team, first.file, command=COMMAND)
    second = export_journal(team, tmp_path / "team.jsonl")
    import_journal(back, second.file, command=COMMAND)

    assert first.rows == imported.rows == second.rows
    assert first.summary() == ("2 rollouts, 3 waves, 5 deployments, "
                               f"{first.rows['events']} events, 2 high-water marks")
    header = json.loads((tmp_path / "team.jsonl").read_text().splitlines()[0])
    assert header["schema_version"] == SCHEMA_VERSION
    assert header["exported_from"] == team.where  # never a password
    assert rows_of(tmp_path / "journal.jsonl") == rows_of(tmp_path / "team.jsonl")
    assert stat.S_IMODE((tmp_path / "journal.jsonl").stat().st_mode) == 0o600
    for settings in (team, back):
        with open_journal(settings) as j:
            assert everything(j) == original
            # New rows follow the imported ones: ids and event numbers go on.
            assert j.events(None)[-1].seq == original[3][-1].seq
            j.complete_rollout(2)
            assert j.events(None)[-1].seq == original[3][-1].seq + 1
            assert j.start_rollout("12.5", V("12.5.0"), "inventory.yaml").id == 3


def test_import_refuses_a_journal_that_is_not_empty(tmp_path: Path, backend: str,
                                                    settings: JournalSettings) -> None:
    source = JournalSettings(tmp_path / "source")
    with open_journal(source) as j:
        fill(j)
    export = export_journal(source, tmp_path / "journal.jsonl")
    with open_journal(settings) as j:
        j.start_rollout("12.4", TARGET, "inventory.yaml")
        before = everything(j)

    with pytest.raises(JournalError, match="is not empty .*1 rollouts.*Nothing was imported"):
        import_journal(settings, export.file, command=COMMAND)

    with open_journal(settings) as j:
        assert everything(j) == before


def lines(*rows: dict[str, Any], rows_count: int | None = None,
          version: int = SCHEMA_VERSION) -> str:
    header = {"format": "astro-fleet-upgrade journal", "schema_version": version,
              "rows": len(rows) if rows_count is None else rows_count}
    return "\n".join(json.dumps(x) for x in (header, *rows)) + "\n"


WAVE_OF_NO_ROLLOUT = {"table": "waves", "row": {
    "rollout_id": 99, "number": 1, "status": "pending", "started_at": None, "finished_at": None,
    "passed_at": None, "soak_seconds": 0, "proceed_after": None, "halt_reason": None,
    "budget": "{}", "approved_by": None, "approved_at": None, "approval_reason": None,
    "skip_gate_by": None, "skip_gate_at": None, "skip_gate_reason": None}}


@pytest.mark.parametrize(("content", "message"), [
    ("target: 12.4\n", ":1: not a JSON line"),
    (lines().replace("astro-fleet-upgrade journal", "x"), ":1: not a journal export"),
    (lines(version=SCHEMA_VERSION + 1), ":1: the export is of journal schema "
                                         f"{SCHEMA_VERSION + 1}.*upgrade the tool"),
    (lines({"table": "photos", "row": {}}), r':2: expected \{"table": one of rollouts'),
    (lines({"table": "waves", "row": {"rollout_id": 1}}),
     ":2: a waves row must have exactly the journal's columns"),
    (lines({"table": "waves", "row": {**WAVE_OF_NO_ROLLOUT["row"], "number": [1]}}),
     ":2: waves.number must be text, a whole number or null"),
    (lines(WAVE_OF_NO_ROLLOUT, rows_count=5), "says 5 rows but holds 1 .cut short"),
    (lines(WAVE_OF_NO_ROLLOUT), ":2: the journal refused this waves row"),
], ids=["not-json", "not-an-export", "newer-schema", "unknown-table", "missing-columns",
        "bad-value", "cut-short", "refused-by-the-database"])
def test_a_bad_export_is_refused_naming_the_line_and_nothing_is_imported(
        tmp_path: Path, settings: JournalSettings, content: str, message: str) -> None:
    file = tmp_path / "journal.jsonl"
    file.write_text(content, "utf-8")

    with pytest.raises(InputError, match=message) as err:
        import_journal(settings, file, command=COMMAND)

    assert err.value.exit_code == EXIT_INPUT and str(file) in str(err.value)
    with open_journal(settings) as j:
        assert j.rollouts() == [] and j.events(None) == []


def test_export_of_no_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no journal yet"):
        export_journal(JournalSettings(tmp_path / "nothing"), tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
