"""A wave's end as people read it: the Ansible-like recap and the Markdown report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from upgrade.model.redact import redact
from upgrade.report import markdown as md
from upgrade.report.analysis import analysis_rows, markdown_lines

if TYPE_CHECKING:  # `status` imports this module: it must not pull in the whole run floor
    from rich.console import Console

    from upgrade.run.rollout.rollout import WaveResult

RESULT_STYLE = {"ok": "green", "skipped": "cyan", "failed": "bold red", "not finished": "yellow",
                "left out": "dim"}
STATUS_STYLE = {
    "passed": "bold green",
    "halted": "bold red",
    "incomplete": "bold yellow",
    "running": "yellow",
    "stopped": "bold red",
    "pending": "dim",
}


def print_recap(result: WaveResult, console: Console) -> None:
    """An Ansible-like recap: one line per Deployment, then the totals and the verdict."""
    console.print(
        Text(
            f"\nRECAP wave {result.wave} → {result.target} (rollout {result.rollout_id})",
            style="bold",
        )
    )
    width = max((len(o.deployment) for o in result.outcomes), default=10)
    lines = []
    for o in result.outcomes:
        line = Text(f"{o.deployment:<{width}} : ")
        line.append(f"{o.result:<12}", style=RESULT_STYLE.get(o.result, ""))
        line.append(
            f" {o.from_version or '?'} → {o.to_version}  state={o.state} deploys={o.deploys}"
        )
        if o.message:
            line.append(f"  {o.message}", style="dim" if o.result == "ok" else "")
        lines.append(line)
    # One print for all the lines: rich measures the console and renders each call on its
    # own, so a print per line cost three times the CPU (97 against 35 ms for 1,000 lines).
    if lines:
        console.print(Text("\n").join(lines))
    counts = " ".join(f"{k}={v}" for k, v in sorted(result.counts().items()))
    console.print(Text(f"\n{counts}"))
    for note in result.notes:
        console.print(Text(note, style="yellow"))
    verdict = Text(
        f"wave {result.wave}: {result.status.upper()}", style=STATUS_STYLE[result.status]
    )
    if result.reason:
        verdict.append(f": {result.reason}")
    console.print(verdict)


def wave_markdown(result: WaveResult, now: datetime) -> str:
    """The per-wave report for change tickets: every text from outside escaped
    (``upgrade.report.markdown``), everything redacted."""
    reason = f" ({md.text(result.reason)})" if result.reason else ""
    lines = [
        f"# Rollout {result.rollout_id}, wave {result.wave}: Astro Runtime "
        f"{md.text(result.target)}",
        "",
        f"- status: **{result.status}**{reason}",
        f"- written: {now.isoformat(timespec='seconds')}",
        f"- totals: {', '.join(f'{k} {v}' for k, v in sorted(result.counts().items()))}",
        *(f"- run by {md.text(r['actor'])} at {r['at']}" for r in result.runs),
        _signoff_line("approved", result.approval, "- approval: not required or not given"),
        _signoff_line("GATE SKIPPED", result.skip_gate, "- gate: passed (not skipped)"),
        *(f"- note: {md.text(n)}" for n in result.notes),
        "",
        "| Deployment | repo | from | to | result | state | deploys | message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in result.outcomes:
        lines.append(md.row((o.deployment, o.repo, o.from_version or "?", o.to_version,
                             o.result, o.state, o.deploys, o.message)))
    lines += markdown_lines(analysis_rows(result.analyses), md.text)
    return redact("\n".join(lines) + "\n")


def _signoff_line(what: str, signoff: dict[str, str] | None, otherwise: str) -> str:
    if signoff is None:
        return otherwise
    return (f"- {what} by {md.text(signoff['actor'])} at {signoff['at']}: "
            f"{md.text(signoff['reason'])}")


def write_wave_markdown(reports: Path, result: WaveResult) -> Path:
    """Write the wave's Markdown report into ``reports`` (the journal's); return its path."""
    reports.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = reports / f"rollout-{result.rollout_id}-wave-{result.wave}.md"
    path.write_text(wave_markdown(result, datetime.now(UTC)), "utf-8")
    return path
