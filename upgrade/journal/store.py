"""The rollout journal: rollouts, waves, Deployments and events, in SQLite or PostgreSQL.

Every state change is committed before the method that makes it returns, so a run killed at
any point resumes from what is written here: nothing done twice that is unsafe to repeat,
nothing forgotten. Commits are durable on disk (SQLite: WAL, ``synchronous=FULL``;
PostgreSQL: ``synchronous_commit=on``), except a Deployment's moves to any state but
``deploying``: those survive a killed process at once and a power cut from the next durable
commit on (the move to ``deploying`` before every deploy, the wave's end), which spares the
journal's lock an fsync per step. What a power cut can take back is only what a resume
redoes safely: a render, a verification, the ``deployed`` a resume finds again by asking
Astro. The SQL is one text for both backends (``upgrade.journal.database``);
the schema is ``upgrade.journal.schema``, the SQLite file ``upgrade.journal.sqlite``, the
PostgreSQL database ``upgrade.journal.postgres``. docs/journal.md describes how to read
either. The states and their legal moves are ``upgrade.journal.states``; the records
returned are ``upgrade.journal.records``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from upgrade.errors import IllegalTransition, InputError
from upgrade.journal.database import Database
from upgrade.journal.records import (
    DeploymentEntry,
    DeploymentRecord,
    Event,
    RepoChange,
    Rollout,
    Row,
    WaveRecord,
    deployment_from_row,
    dumps,
    event_from_row,
    iso,
    repo_change_from_row,
    rollout_from_row,
    wave_from_row,
    whoami,
)
from upgrade.journal.sqlite import open_file
from upgrade.journal.states import (
    DEPLOYED,
    DEPLOYING,
    FAILED,
    PENDING,
    SKIPPED,
    STATES,
    TRANSITIONS,
    VERIFIED,
    WaveStatus,
    passed_over,
)
from upgrade.model.redact import Redactor
from upgrade.model.versions import RuntimeVersion, parse_version

Clock = Callable[[], datetime]


class Journal:
    """The durable record of rollouts; safe to share between worker threads."""

    def __init__(self, db: Database, *, clock: Clock | None = None, actor: str | None = None):
        """The journal in ``db`` (opened by ``Journal.open`` or ``upgrade.journal.configured``)."""
        self._db = db
        self.where = db.where  # the file, or the database URL without a password
        self.actor = actor or whoami()  # recorded on events that name no one else
        self._clock = clock or (lambda: datetime.now(UTC))
        # The one redaction rule, on every text the journal stores (messages, errors,
        # reasons, event data): a secret that reached a message is never written down.
        self._redact = Redactor.from_env(os.environ)

    @classmethod
    def open(cls, path: str | Path, *, clock: Clock | None = None,
             actor: str | None = None) -> Journal:
        """Open (or create) the SQLite journal file at ``path``; refuse any file not ours."""
        return cls(open_file(Path(path)), clock=clock, actor=actor)

    @classmethod
    def existing(cls, path: str | Path) -> Journal | None:
        """Open the SQLite journal at ``path`` if there is one (for reading), else None."""
        return cls.open(path) if Path(path).exists() else None

    @property
    def database(self) -> Database:
        """The connection this journal reads and writes through."""
        return self._db

    def close(self) -> None:
        """Close the connection; everything was already committed."""
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _now(self) -> str:
        return iso(self._clock())

    def _write(self, durable: bool = True) -> AbstractContextManager[Database]:
        """One serialised transaction, committed before the caller's method returns (and
        on disk, unless not ``durable``)."""
        return self._db.write(durable=durable)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return self._db.rows(sql, params)

    def _event(self, db: Database, at: str, kind: str, *, rollout_id: int | None,
               wave: int | None = None, deployment_id: str | None = None,
               from_state: str | None = None, to_state: str | None = None,
               message: str | None = None, data: Mapping[str, Any] | None = None,
               who: str | None = None) -> int:
        return db.insert(
            "INSERT INTO events (at, rollout_id, wave, deployment_id, kind, from_state, "
            "to_state, message, actor, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, rollout_id, wave, deployment_id, kind, from_state, to_state,
             self._text(message), who or self.actor,
             None if data is None else self._text(dumps(data))), "seq")

    def _text(self, text: str | None) -> str | None:
        return None if text is None else self._redact(text)

    @staticmethod
    def _active(db: Database, rollout_id: int) -> None:
        row = db.execute("SELECT status FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
        if row is None:
            raise IllegalTransition(f"rollout {rollout_id} does not exist in this journal")
        if row["status"] != "active":
            raise IllegalTransition(f"rollout {rollout_id} is {row['status']}; it cannot change")

    # -- rollouts -------------------------------------------------------------------------

    def active_rollout(self) -> Rollout | None:
        """The rollout in progress, if any (there is at most one)."""
        rows = self._rows("SELECT * FROM rollouts WHERE status = 'active'")
        return rollout_from_row(rows[0]) if rows else None

    def get_rollout(self, rollout_id: int) -> Rollout | None:
        """One rollout by id."""
        rows = self._rows("SELECT * FROM rollouts WHERE id = ?", (rollout_id,))
        return rollout_from_row(rows[0]) if rows else None

    def rollouts(self) -> list[Rollout]:
        """Every rollout, oldest first."""
        return [rollout_from_row(r) for r in self._rows("SELECT * FROM rollouts ORDER BY id")]

    def start_rollout(self, target_spec: str, target_version: RuntimeVersion,
                      inventory: str | Path, actor: str | None = None, *,
                      pins: Mapping[str, RuntimeVersion] | None = None,
                      target_source: str = "inventory",
                      approval: tuple[int, str] | None = None) -> Rollout:
        """Begin a rollout pinned to ``target_version``; only one may be active.

        ``pins`` maps each target spec the rollout follows to its exact version (default:
        ``{target_spec: target_version}``); ``target_source`` is ``inventory`` or
        ``--target`` (see ``Rollout``). ``approval`` (wave, reason) records ``actor``'s
        approval of that wave in the same transaction: an ``approve`` that starts the
        rollout leaves both or neither, whenever it is killed.
        """
        now, who = self._now(), actor or self.actor
        if approval is not None:
            approval = (approval[0], _reason(approval[1], f"the approval of wave {approval[0]}"))
        default = {target_spec: target_version}
        pins = dict(pins) if pins is not None else default
        with self._write() as db:
            active = db.execute("SELECT id, target_version FROM rollouts "
                                "WHERE status = 'active'").fetchone()
            if active is not None:
                raise IllegalTransition(
                    f"rollout {active['id']} (to {active['target_version']}) is still active; "
                    "resume it, or complete or abandon it before starting another")
            rollout_id = db.insert(
                "INSERT INTO rollouts (target_spec, target_version, inventory, created_at, "
                "created_by, status, pins, target_source) "
                "VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
                (target_spec, str(target_version), str(inventory), now, who, dumps(pins),
                 target_source), "id")
            data: dict[str, Any] = {"target_spec": target_spec, "target_version": target_version,
                                    "inventory": str(inventory)}
            if pins != default:
                data["pins"] = pins
            if target_source != "inventory":
                data["target_source"] = target_source
            self._event(db, now, "rollout_started", rollout_id=rollout_id, who=who,
                        message=f"target {target_spec} pinned to {target_version}", data=data)
            if approval is not None:
                self._signoff_in(db, now, rollout_id, approval[0], "approval", "approved", who,
                                 approval[1])
        return self._get_rollout(rollout_id)

    def complete_rollout(self, rollout_id: int) -> Rollout:
        """Mark an active rollout completed (every wave done)."""
        return self._finish_rollout(rollout_id, "completed", self.actor, None)

    def abandon_rollout(self, rollout_id: int, actor: str, reason: str) -> Rollout:
        """Mark an active rollout abandoned, with who and why."""
        return self._finish_rollout(rollout_id, "abandoned", actor,
                                    _reason(reason, f"abandoning rollout {rollout_id}"))

    def _finish_rollout(self, rollout_id: int, status: str, who: str,
                        reason: str | None) -> Rollout:
        now = self._now()
        with self._write() as db:
            self._active(db, rollout_id)
            db.execute("UPDATE rollouts SET status = ?, finished_at = ?, finished_by = ?, "
                       "finish_reason = ? WHERE id = ?",
                       (status, now, who, self._text(reason), rollout_id))
            self._event(db, now, f"rollout_{status}", rollout_id=rollout_id, who=who,
                        message=reason)
        return self._get_rollout(rollout_id)

    def _get_rollout(self, rollout_id: int) -> Rollout:
        rollout = self.get_rollout(rollout_id)
        assert rollout is not None
        return rollout

    # -- waves ----------------------------------------------------------------------------

    def wave(self, rollout_id: int, number: int) -> WaveRecord | None:
        """One wave of a rollout, or None when nothing was recorded for it yet."""
        rows = self._rows("SELECT * FROM waves WHERE rollout_id = ? AND number = ?",
                          (rollout_id, number))
        return wave_from_row(rows[0]) if rows else None

    def waves(self, rollout_id: int) -> list[WaveRecord]:
        """Every recorded wave of a rollout, in order."""
        rows = self._rows("SELECT * FROM waves WHERE rollout_id = ? ORDER BY number",
                          (rollout_id,))
        return [wave_from_row(r) for r in rows]

    def start_wave(self, rollout_id: int, number: int, *, soak_seconds: int = 0,
                   budget: Mapping[str, Any] | None = None) -> WaveRecord:
        """Mark a wave running (again, on resume); a passed wave must pass and soak anew."""
        if soak_seconds < 0:
            raise IllegalTransition(f"wave {number}: soak_seconds must be >= 0")
        now = self._now()
        with self._write() as db:
            self._active(db, rollout_id)
            before = db.execute("SELECT status FROM waves WHERE rollout_id = ? AND number = ?",
                                (rollout_id, number)).fetchone()
            db.execute("INSERT INTO waves (rollout_id, number) VALUES (?, ?) "
                       "ON CONFLICT DO NOTHING", (rollout_id, number))
            db.execute(
                "UPDATE waves SET status = 'running', started_at = coalesce(started_at, ?), "
                "finished_at = NULL, passed_at = NULL, proceed_after = NULL, halt_reason = NULL, "
                "soak_seconds = ?, budget = coalesce(?, budget) "
                "WHERE rollout_id = ? AND number = ?",
                (now, soak_seconds, None if budget is None else dumps(budget), rollout_id, number))
            previous = before["status"] if before else None
            self._event(db, now, "wave_started", rollout_id=rollout_id, wave=number,
                        from_state=previous, to_state="running",
                        data={"soak_seconds": soak_seconds})
        return self._get_wave(rollout_id, number)

    def finish_wave(self, rollout_id: int, number: int, status: WaveStatus, *,
                    reason: str | None = None,
                    budget: Mapping[str, Any] | None = None) -> WaveRecord:
        """Close a running wave as passed (its soak starts now) or halted (with a reason)."""
        if status not in ("passed", "halted"):
            raise IllegalTransition(f"wave {number}: a wave finishes as passed or halted, "
                                    f"not {status}")
        if status == "halted" and not (reason or "").strip():
            raise IllegalTransition(f"wave {number}: a halted wave needs a reason")
        now_dt = self._clock()
        now = iso(now_dt)
        with self._write() as db:
            self._active(db, rollout_id)
            row = db.execute("SELECT status, soak_seconds FROM waves "
                             "WHERE rollout_id = ? AND number = ?", (rollout_id, number)).fetchone()
            if row is None or row["status"] != "running":
                state = row["status"] if row else "not started"
                raise IllegalTransition(f"wave {number} is {state}; only a running wave finishes")
            passed = status == "passed"
            proceed = iso(now_dt + timedelta(seconds=row["soak_seconds"])) if passed else None
            db.execute(
                "UPDATE waves SET status = ?, finished_at = ?, passed_at = ?, proceed_after = ?, "
                "halt_reason = ?, budget = coalesce(?, budget) WHERE rollout_id = ? AND number = ?",
                (status, now, now if passed else None, proceed,
                 None if passed else self._text(reason),
                 None if budget is None else dumps(budget), rollout_id, number))
            self._event(db, now, f"wave_{status}", rollout_id=rollout_id, wave=number,
                        from_state="running", to_state=status, message=reason,
                        data=None if budget is None else {"budget": dict(budget)})
        return self._get_wave(rollout_id, number)

    def record_approval(self, rollout_id: int, number: int, actor: str,
                        reason: str) -> WaveRecord:
        """Record a person's approval to start a wave, with their reason."""
        return self._signoff(rollout_id, number, "approval", "approved", actor, reason)

    def record_skip_gate(self, rollout_id: int, number: int, actor: str,
                         reason: str) -> WaveRecord:
        """Record a person's override of the gate before a wave, with their reason."""
        return self._signoff(rollout_id, number, "skip_gate", "skip_gate", actor, reason)

    def _signoff(self, rollout_id: int, number: int, kind: str, prefix: str, who: str,
                 reason: str) -> WaveRecord:
        reason = _reason(reason, f"the {kind.replace('_', ' ')} of wave {number}")
        now = self._now()
        with self._write() as db:
            self._signoff_in(db, now, rollout_id, number, kind, prefix, who, reason)
        return self._get_wave(rollout_id, number)

    def _signoff_in(self, db: Database, now: str, rollout_id: int, number: int, kind: str,
                    prefix: str, who: str, reason: str) -> None:
        """The writes of one sign-off, inside the caller's transaction."""
        reason_col = "approval_reason" if kind == "approval" else "skip_gate_reason"
        self._active(db, rollout_id)
        db.execute("INSERT INTO waves (rollout_id, number) VALUES (?, ?) "
                   "ON CONFLICT DO NOTHING", (rollout_id, number))
        db.execute(f"UPDATE waves SET {prefix}_by = ?, {prefix}_at = ?, {reason_col} = ? "
                   "WHERE rollout_id = ? AND number = ?",
                   (who, now, self._text(reason), rollout_id, number))
        self._event(db, now, kind, rollout_id=rollout_id, wave=number, message=reason, who=who)

    def _get_wave(self, rollout_id: int, number: int) -> WaveRecord:
        wave = self.wave(rollout_id, number)
        assert wave is not None
        return wave

    # -- deployments ----------------------------------------------------------------------

    def ensure_deployments(self, rollout_id: int, wave: int,
                           entries: Iterable[DeploymentEntry]) -> list[str]:
        """Register pending rows for Deployments new to the rollout; return the ids added.

        Rows that exist are never reset, so calling this again on resume is safe.
        """
        entries = list(entries)
        now = self._now()
        added: list[str] = []
        with self._write() as db:
            self._active(db, rollout_id)
            db.execute("INSERT INTO waves (rollout_id, number) VALUES (?, ?) "
                       "ON CONFLICT DO NOTHING", (rollout_id, wave))
            # Registration order, across the journal (it was SQLite's rowid in schema 1).
            position = db.execute("SELECT coalesce(max(position), 0) AS n "
                                  "FROM deployments").fetchone()["n"]
            for e in entries:
                cur = db.execute(
                    "INSERT INTO deployments (rollout_id, deployment_id, name, repo, "
                    "wave, state, from_version, to_version, updated_at, target_spec, position) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (rollout_id, e.deployment_id, e.name, e.repo, wave,
                     None if e.from_version is None else str(e.from_version),
                     str(e.to_version), now, e.target_spec, position + 1))
                if cur.rowcount == 1:
                    position += 1
                    added.append(e.deployment_id)
                    self._event(db, now, "registered", rollout_id=rollout_id, wave=wave,
                                deployment_id=e.deployment_id, to_state=PENDING,
                                data={"from": e.from_version, "to": e.to_version})
        return added

    def deployment(self, rollout_id: int, deployment_id: str) -> DeploymentRecord | None:
        """One Deployment's row in a rollout."""
        rows = self._rows("SELECT * FROM deployments WHERE rollout_id = ? AND deployment_id = ?",
                          (rollout_id, deployment_id))
        return deployment_from_row(rows[0]) if rows else None

    def deployments(self, rollout_id: int, wave: int | None = None) -> list[DeploymentRecord]:
        """A rollout's Deployments (of one wave, if given), by wave then registration order."""
        if wave is None:
            rows = self._rows("SELECT * FROM deployments WHERE rollout_id = ? "
                              "ORDER BY wave, position", (rollout_id,))
        else:
            rows = self._rows("SELECT * FROM deployments WHERE rollout_id = ? AND wave = ? "
                              "ORDER BY position", (rollout_id, wave))
        return [deployment_from_row(r) for r in rows]

    def transition(self, rollout_id: int, deployment_id: str, to_state: str, *,
                   error: str | None = None, message: str | None = None,
                   data: Mapping[str, Any] | None = None,
                   count_deploy: bool = False, commit: str | None = None) -> DeploymentRecord:
        """Move a Deployment to ``to_state``; row and event are committed when this returns.

        Entering ``deployed`` or ``verified`` also raises its high-water mark to the
        rollout's target, in the same transaction; ``commit`` (entering ``deployed``) is
        the git commit the deploy was built from. Raises IllegalTransition on a move
        the state table forbids.
        """
        if to_state not in TRANSITIONS:
            raise IllegalTransition(f"{deployment_id}: unknown state {to_state!r}")
        if to_state in (FAILED, SKIPPED) and not (error or "").strip():
            raise IllegalTransition(f"{deployment_id}: {to_state} needs an error saying why")
        if count_deploy and to_state != DEPLOYING:
            raise IllegalTransition(f"{deployment_id}: only a move to deploying counts a deploy")
        now = self._now()
        # On disk before a deploy starts; the other moves go with the next durable commit.
        with self._write(durable=to_state == DEPLOYING) as db:
            self._active(db, rollout_id)
            row = db.execute("SELECT * FROM deployments WHERE rollout_id = ? AND "
                             "deployment_id = ?", (rollout_id, deployment_id)).fetchone()
            if row is None:
                raise IllegalTransition(f"{deployment_id} is not registered in rollout "
                                        f"{rollout_id}")
            current = row["state"]
            if to_state not in TRANSITIONS[current]:
                legal = ", ".join(s for s in STATES if s in TRANSITIONS[current]) or "none"
                raise IllegalTransition(f"{deployment_id}: {current} → {to_state} is not a legal "
                                        f"transition (from {current}: {legal})")
            if current == PENDING and to_state == VERIFIED:
                self._nothing_done(db, row)
            skipped = passed_over(current, to_state)
            if skipped:  # never silently: the event names what the move passed over
                data = {**(data or {}), "skipped": list(skipped)}
            begins = current == PENDING and to_state != SKIPPED
            db.execute(
                "UPDATE deployments SET state = ?, error = ?, failed_from = ?, "
                "attempts = attempts + ?, deploys = deploys + ?, "
                "started_at = coalesce(started_at, ?), updated_at = ? "
                "WHERE rollout_id = ? AND deployment_id = ?",
                (to_state, self._text(error) if to_state in (FAILED, SKIPPED) else None,
                 current if to_state == FAILED else None, int(begins), int(count_deploy),
                 now if begins else None, now, rollout_id, deployment_id))
            self._event(db, now, "transition", rollout_id=rollout_id, wave=row["wave"],
                        deployment_id=deployment_id, from_state=current, to_state=to_state,
                        message=error if message is None else message, data=data)
            if to_state in (DEPLOYED, VERIFIED):
                self._raise(db, now, deployment_id, parse_version(row["to_version"]), rollout_id)
            if commit is not None and to_state == DEPLOYED:
                db.execute("UPDATE deployments SET deployed_commit = ? WHERE rollout_id = ? AND "
                           "deployment_id = ?", (commit, rollout_id, deployment_id))
            new = db.execute("SELECT * FROM deployments WHERE rollout_id = ? AND "
                             "deployment_id = ?", (rollout_id, deployment_id)).fetchone()
        return deployment_from_row(new)

    @staticmethod
    def _nothing_done(db: Database, row: Row) -> None:
        """Refuse ``pending → verified`` for a Deployment this rollout has worked on (or
        whose repo it changed): its facts (the commit, the merge, the deploy) come first."""
        changed = db.execute("SELECT 1 FROM repo_changes WHERE rollout_id = ? AND repo = ?",
                             (row["rollout_id"], row["repo"])).fetchone()
        if row["started_at"] is not None or changed is not None:
            raise IllegalTransition(
                f"{row['deployment_id']}: pending → verified only for a Deployment with "
                "nothing to do; this one was worked on in this rollout, so it is verified "
                "after its deploy is recorded (deployed)")

    def set_baseline(self, rollout_id: int, deployment_id: str, data: Mapping[str, Any]) -> None:
        """Store what a Deployment looked like before its deploy (e.g. its import errors)."""
        now = self._now()
        with self._write() as db:
            self._active(db, rollout_id)
            cur = db.execute("UPDATE deployments SET baseline = ?, updated_at = ? "
                             "WHERE rollout_id = ? AND deployment_id = ?",
                             (self._text(dumps(data)), now, rollout_id, deployment_id))
            if cur.rowcount != 1:
                raise IllegalTransition(f"{deployment_id} is not registered in rollout "
                                        f"{rollout_id}")
            self._event(db, now, "baseline", rollout_id=rollout_id, deployment_id=deployment_id,
                        data=data)

    # -- repos' changes in git modes ------------------------------------------------------

    def repo_change(self, rollout_id: int, repo: str) -> RepoChange | None:
        """How ``repo``'s change stands in this rollout (None: nothing pushed yet)."""
        rows = self._rows("SELECT * FROM repo_changes WHERE rollout_id = ? AND repo = ?",
                          (rollout_id, repo))
        return repo_change_from_row(rows[0]) if rows else None

    def repo_changes(self, rollout_id: int | None = None) -> list[RepoChange]:
        """Every repo's change (of one rollout, or of all), by rollout and repo."""
        if rollout_id is None:
            rows = self._rows("SELECT * FROM repo_changes ORDER BY rollout_id, repo")
        else:
            rows = self._rows("SELECT * FROM repo_changes WHERE rollout_id = ? ORDER BY repo",
                              (rollout_id,))
        return [repo_change_from_row(r) for r in rows]

    def record_repo_change(self, rollout_id: int, repo: str, mode: str, message: str,
                           source: str | None = None,
                           **fields: str | int | None) -> RepoChange:
        """Set fields of ``repo``'s change (branch, base_commit, pushed_commit, pr_number,
        pr_url, merge_commit) once the remote or the forge confirmed them; one event, naming
        the system that said so (``source``: git, forge)."""
        allowed = {"branch", "base_commit", "pushed_commit", "pr_number", "pr_url",
                   "merge_commit"}
        if not set(fields) <= allowed:
            raise IllegalTransition(f"unknown repo change fields: {sorted(set(fields) - allowed)}")
        now = self._now()
        with self._write() as db:
            self._active(db, rollout_id)
            db.execute("INSERT INTO repo_changes (rollout_id, repo, mode, updated_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT (rollout_id, repo) DO NOTHING",
                       (rollout_id, repo, mode, now))
            if fields:
                sets = ", ".join(f"{name} = ?" for name in fields)
                db.execute(f"UPDATE repo_changes SET {sets}, updated_at = ? "
                           "WHERE rollout_id = ? AND repo = ?",
                           (*fields.values(), now, rollout_id, repo))
            said = {"source": source} if source else {}
            self._event(db, now, "repo_change", rollout_id=rollout_id, message=message,
                        data={"repo": repo, "mode": mode, **said, **fields})
            row = db.execute("SELECT * FROM repo_changes WHERE rollout_id = ? AND repo = ?",
                             (rollout_id, repo)).fetchone()
        return repo_change_from_row(row)

    # -- events ---------------------------------------------------------------------------

    def event(self, kind: str, *, rollout_id: int | None = None, wave: int | None = None,
              deployment_id: str | None = None, message: str | None = None,
              data: Mapping[str, Any] | None = None, actor: str | None = None) -> int:
        """Append a non-state event (gate refused, lock taken over, note); returns its seq."""
        now = self._now()
        with self._write() as db:
            return self._event(db, now, kind, rollout_id=rollout_id, wave=wave,
                               deployment_id=deployment_id, message=message, data=data,
                               who=actor)

    def events(self, rollout_id: int | None, since_seq: int = 0,
               kind: str | None = None) -> list[Event]:
        """Events after ``since_seq``, oldest first: of one rollout, or all when None; only
        those of ``kind`` when given."""
        where, params = "seq > ?", [since_seq]
        if rollout_id is not None:
            where, params = "rollout_id = ? AND " + where, [rollout_id, since_seq]
        if kind is not None:
            where += " AND kind = ?"
            params.append(kind)
        rows = self._rows(f"SELECT * FROM events WHERE {where} ORDER BY seq", tuple(params))
        return [event_from_row(r) for r in rows]

    # -- high-water marks -----------------------------------------------------------------

    def high_water(self) -> dict[str, RuntimeVersion]:
        """The highest Runtime each Deployment ever had, by our records."""
        rows = self._rows("SELECT deployment_id, version FROM high_water")
        return {r["deployment_id"]: parse_version(r["version"]) for r in rows}

    def _raise(self, db: Database, now: str, deployment_id: str,
               version: RuntimeVersion, rollout_id: int | None) -> bool:
        row = db.execute("SELECT version FROM high_water WHERE deployment_id = ?",
                         (deployment_id,)).fetchone()
        old = None if row is None else parse_version(row["version"])
        if old is not None and version <= old:  # RuntimeVersion order, never string order
            return False
        db.execute("INSERT INTO high_water (deployment_id, version, rollout_id, at) "
                   "VALUES (?, ?, ?, ?) ON CONFLICT (deployment_id) DO UPDATE SET "
                   "version = excluded.version, rollout_id = excluded.rollout_id, at = excluded.at",
                   (deployment_id, str(version), rollout_id, now))
        self._event(db, now, "high_water", rollout_id=rollout_id, deployment_id=deployment_id,
                    message=f"{old or 'none'} → {version}", data={"from": old, "to": version})
        return True


def _reason(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InputError(f"{what} needs a reason: say why, in a few words, so the journal "
                         "records it.")
    return text
