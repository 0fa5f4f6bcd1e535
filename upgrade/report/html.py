"""The HTML rollout report: one self-contained file (inline CSS and SVG, no script, no
network) with the timeline, the fleet's version matrix and the summary.

Rendered from ``report/templates/rollout.html.j2`` in the same immutable Jinja2 sandbox
as Dockerfile templates (``upgrade.model.template.Sandbox``), with HTML autoescaping: every
text comes from the journal (already redacted, ``rollout_view``) and is escaped once,
here. The geometry of the bars is worked out in Python so the template only writes it.

Long idle stretches (a soak of a day, a wave waiting for its approval) would leave every
bar a speck, so a wave's time axis is linear while something happens and each gap longer
than :data:`GAP_SECONDS` (and a fifth of the wave's busy time) is drawn as a fixed-width
break labelled with the time it stands for.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined

from upgrade.config.inventory import Inventory
from upgrade.config.targets import TargetSource
from upgrade.errors import InputError
from upgrade.journal.configured import existing_journal
from upgrade.model.catalog import Catalog
from upgrade.model.template import Sandbox
from upgrade.model.versions import RuntimeVersion
from upgrade.report.rollout_view import (
    PHASES,
    Bar,
    RolloutView,
    Row,
    WaveView,
    duration,
    rollout_view,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHART_WIDTH = 900  # px of time axis
LABEL_WIDTH = 230  # px for the Deployment's name
ROW_HEIGHT = 18
GAP_WIDTH = 28  # px of a break in the time axis
GAP_SECONDS = 60.0
LETTER = {"queued": "Q", "render": "R", "commit": "C", "test": "T", "deploy": "D",
          "verify": "V", "soak": "S"}


@dataclass(frozen=True)
class Gap:
    """A stretch of idle time drawn as a fixed-width break."""

    x: float
    seconds: float


class Scale:
    """Time to x: linear over busy stretches, a fixed-width break for each long idle one."""

    def __init__(self, spans: Sequence[tuple[datetime, datetime]], width: float = CHART_WIDTH):
        merged: list[list[float]] = []
        for start, end in sorted((s.timestamp(), max(s, e).timestamp()) for s, e in spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        if not merged:
            merged = [[0.0, 1.0]]
        busy = sum(e - s for s, e in merged) or 1.0
        limit = max(GAP_SECONDS, busy / 5)
        # Pieces of the axis: (t0, t1, compressed?) in order.
        pieces: list[tuple[float, float, bool]] = []
        for i, (s, e) in enumerate(merged):
            if i:
                prev = merged[i - 1][1]
                pieces.append((prev, s, s - prev > limit))
            pieces.append((s, e, False))
        breaks = sum(1 for p in pieces if p[2])
        linear = sum(t1 - t0 for t0, t1, squeezed in pieces if not squeezed) or 1.0
        self.per_second = max(0.0, width - breaks * GAP_WIDTH) / linear
        self._t0 = [p[0] for p in pieces]
        self._pieces = pieces
        self._x0: list[float] = []
        x = 0.0
        self.gaps: list[Gap] = []
        for t0, t1, squeezed in pieces:
            self._x0.append(x)
            if squeezed:
                self.gaps.append(Gap(x, t1 - t0))
                x += GAP_WIDTH
            else:
                x += (t1 - t0) * self.per_second
        self.width = x

    def x(self, moment: datetime) -> float:
        """The x of ``moment`` (clamped to the axis)."""
        t = moment.timestamp()
        i = max(0, bisect_right(self._t0, t) - 1)
        t0, t1, squeezed = self._pieces[i]
        t = min(max(t, t0), t1)
        if squeezed:
            return self._x0[i] + (GAP_WIDTH * (t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return self._x0[i] + (t - t0) * self.per_second


def _rollout_pieces(view: RolloutView) -> Iterator[str]:
    at = _clock(view.rollout.created_at)
    return _template().generate(
        view=view,
        day=_at(view.rollout.created_at),
        r=view.rollout,
        given=view.rollout.target_source == TargetSource.FLAG,
        flag=TargetSource.FLAG.value,
        phases=PHASES,
        letters=LETTER,
        waves=[_wave_chart(w, at, view.rollout.created_at.date()) for w in view.waves],
        generated=_at(view.now),
        at=at,
        duration=duration,
        label_width=LABEL_WIDTH,
        row_height=ROW_HEIGHT,
        total=len(view.rows),
        table=_table(view.rows),
    )


def write_rollout_html(path: Path, view: RolloutView) -> Path:
    """Write the report to ``path`` (its directory made private when created); return it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written as rendered: the rendered pieces held all at once were most of a run's peak
    # memory at 5,000 Deployments. Into a temp file first, so a failure leaves the last
    # report whole.
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.writelines(_rollout_pieces(view))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_report(inv: Inventory, catalog: Catalog, rollout_id: int | None, output: Path | None,
                 *, program: str, observed: Mapping[str, RuntimeVersion] | None = None,
                 observed_note: str = "") -> RolloutView:
    """Write the HTML report of ``rollout_id`` (None: the newest) to ``output`` (None:
    ``rollout-N.html`` beside the wave reports), from the journal, ``inv``'s waves and
    ``catalog``, and what Astro runs now (``observed``, when it was looked at). Returns the
    view written, ``view.path`` set."""
    journal = existing_journal(inv.journal)
    if journal is None:
        raise InputError(f"no journal yet ({inv.journal.where}): nothing has been rolled out, "
                         "so there is no report to write.")
    with journal:
        known = [r.id for r in journal.rollouts()]
        if rollout_id is not None and rollout_id not in known:
            listed = ", ".join(map(str, known)) or "none"
            raise InputError(f"--rollout {rollout_id}: no such rollout in the journal "
                             f"(rollouts: {listed}). Give one of those, or leave --rollout out "
                             "for the newest.")
        view = rollout_view(journal, rollout_id, catalog, datetime.now(UTC),
                            program=program, observed=observed, observed_note=observed_note,
                            waves={d.wave for d in inv.deployments})
    if view is None:
        raise InputError(f"the journal ({inv.journal.where}) has no rollout yet: there is no "
                         "report to write.")
    path = output or report_path(inv.journal.reports, view.rollout.id)
    view.path = write_rollout_html(path, view)
    return view


def report_path(reports: Path, rollout_id: int) -> Path:
    """Where the rollout's HTML report is kept, beside its waves' Markdown reports."""
    return reports / f"rollout-{rollout_id}.html"


@cache
def _template() -> Any:
    env = Sandbox(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                  autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("rollout.html.j2")


def _wave_chart(w: WaveView, at: Callable[[datetime | None], str], day: date) -> dict[str, Any]:
    """A wave's SVG geometry: rows of bars, its soak, the annotations, the breaks."""
    spans = [(b.start, b.end) for r in w.rows for b in r.bars]
    spans += [(n.at, n.at) for n in w.notes]
    # A soak's end is a point on the axis: a long soak becomes a break, not the whole chart.
    if w.soak is not None:
        spans.append((w.soak.end, w.soak.end))
    scale = Scale(spans)
    top = 34  # room for the annotations' markers and the breaks' labels
    # Plain dicts read by subscript: the sandbox checks every attribute read, and a large
    # fleet's chart is most of the template's work.
    rows = []
    for i, row in enumerate(w.rows):
        y = top + i * ROW_HEIGHT
        rows.append({"name": row.name, "y": y, "ty": y + 13, "by": y + 3, "ly": y + 12,
                     "stripe": i % 2 == 1,
                     "label": row.name + ("" if row.result == "ok" else f" [{row.result}]"),
                     "bars": [_bar(b, scale, day) for b in row.bars]})
    notes = []
    for n in w.notes:
        notes.append({"x": round(LABEL_WIDTH + scale.x(n.at), 1), "note": n,
                      "mark": {"run": "▶", "batch": "│", "approval": "✓", "skip_gate": "⚠",
                               "findings": "!", "passed": "■", "halted": "✗",
                               "analysis_failed": "A✗", "analysis_accepted": "A⚠",
                               "analysis_retry": "A↻"}.get(n.kind, "•")})
    return {
        "wave": w,
        "height": top + max(1, len(rows)) * ROW_HEIGHT + 8,
        "width": round(LABEL_WIDTH + scale.width + 40),
        "rows": rows,
        "soak": None if w.soak is None else _bar(w.soak, scale, day),
        "notes": notes,
        "gaps": [{"x": round(LABEL_WIDTH + g.x, 1), "label": duration(g.seconds)}
                 for g in scale.gaps],
        "span": _span(w, at),
        "summary": _summary(w),
    }


def _bar(bar: Bar, scale: Scale, day: date) -> dict[str, Any]:
    x0, x1 = LABEL_WIDTH + scale.x(bar.start), LABEL_WIDTH + scale.x(bar.end)
    width = max(2.0, x1 - x0)
    # The row names the Deployment; an ok bar needs no word for its outcome.
    title = (f"{PHASES[bar.phase]} {_tick(bar.start, day)} → {_tick(bar.end, day)} "
             f"({duration(bar.seconds)})" + ("" if bar.outcome == "ok" else f" {bar.outcome}")
             + (f": {bar.message}" if bar.message else ""))
    return {"x": _num(x0), "w": _num(width), "lx": _num(x0 + 2), "mx": _num(x0 + width + 2),
            "cls": f"{bar.phase} {bar.outcome}", "title": title, "length": duration(bar.seconds),
            "letter": LETTER[bar.phase] if width >= 11 else "",
            "mark": {"failed": "✗", "running": "…"}.get(bar.outcome, "")}


def _table(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The timeline as a table's rows (the charts' text alternative)."""
    words = {"ok": "✓ ok", "failed": "✗ failed", "skipped": "– skipped"}
    return [{
        "id": row.deployment_id, "wave": row.wave, "batch": row.batch or "", "name": row.name,
        "repo": row.repo, "versions": f"{row.from_version} → {row.to_version}",
        "result": words.get(row.result, f"… {row.result}"),
        "result_class": row.result.replace(" ", "-"),
        "phases": ", ".join(f"{PHASES[b.phase]} {duration(b.seconds)}"
                            + ("" if b.outcome == "ok" else f" ({b.outcome})") for b in row.bars),
        "error": row.error, "details": row.details,
    } for row in rows]


def _num(value: float) -> str:
    """A coordinate, short: ``230`` or ``230.5``."""
    return f"{round(value, 1):g}"


def _span(w: WaveView, _at: Callable[[datetime | None], str]) -> str:
    r = w.record
    if r is None or r.started_at is None:
        return "not started"
    end = r.finished_at
    text = f"started {_at(r.started_at)}"
    if end is not None:
        text += f", ended {_at(end)} ({duration((end - r.started_at).total_seconds())})"
    if r.passed_at and r.proceed_after and r.proceed_after > r.passed_at:
        text += f", soak until {_at(r.proceed_after)}"
    return text


def _summary(w: WaveView) -> str:
    """The chart's text alternative: what a reader who cannot see it needs first."""
    counts = ", ".join(f"{n} {k}" for k, n in w.counts.items()) or "no Deployments"
    slowest = max((r for r in w.rows), default=None,
                  key=lambda r: sum(b.seconds for b in r.bars if b.phase != "soak"))
    text = f"Wave {w.number}: {w.status}; {len(w.rows)} Deployment(s): {counts}."
    if slowest is not None and slowest.bars:
        busy = sum(b.seconds for b in slowest.bars if b.phase != "soak")
        text += f" Slowest: {slowest.name} ({duration(busy)})."
    if w.halt_reason:
        text += f" Halted: {w.halt_reason}."
    return text + " Every bar is listed with its times in the table of Deployments below."


def _clock(rollout_start: datetime) -> Callable[[datetime | None], str]:
    """How times read: the rollout's day is in the header, so that day's need only the clock."""
    day = rollout_start.date()

    def at(moment: datetime | None) -> str:
        if moment is not None and moment.date() == day:
            return moment.strftime("%H:%M:%S")
        return _at(moment)

    return at


def _at(moment: datetime | None) -> str:
    """A time as the report shows it: UTC, to the second (the date when not today's)."""
    if moment is None:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _tick(moment: datetime, day: date) -> str:
    """A bar's end as its tooltip shows it: to the tenth of a second (UTC; the date only
    when it is not the rollout's first day)."""
    clock = f"{moment:%H:%M:%S}.{moment.microsecond // 100000}"
    return clock if moment.date() == day else f"{moment:%Y-%m-%d} {clock}"
