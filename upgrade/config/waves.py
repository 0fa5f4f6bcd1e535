"""Waves: the order a fleet is upgraded in, and how each wave rolls out.

A Deployment's wave is its own ``wave``; else the first ``waves.N.match`` (ascending N)
that selects it; else the lowest ``wave`` among its groups (ancestors included). Each
wave's settings (batches, parallelism, failure budgets, soak, approval, verification) are
validated here when the inventory is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from upgrade.config.checker import Checker
from upgrade.config.located import LMap, LScalar, LSeq, join
from upgrade.config.verify import VerifyLayer, read_verify_layer

WAVE_KEYS = ("match", "parallel", "batch", "max_fail_percentage", "max_failures", "soak",
             "approval", "verify")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


@dataclass(frozen=True)
class WaveSettings:
    """How one wave rolls out; defaults apply to waves used but not listed in ``waves:``."""

    number: int
    match: tuple[str, ...] = ()
    parallel: int | None = None  # None: only the runners' limits apply
    batch: tuple[int | str, ...] = ()  # Ansible serial: ints and "N%"; () = one batch
    max_fail_percentage: float | None = None
    max_failures: int | None = None
    soak_seconds: int = 0
    approval: bool = False
    verify: VerifyLayer | None = None

    def batch_sizes(self, total: int) -> list[int]:
        """Successive batch sizes for ``total`` Deployments (Ansible ``serial`` semantics).

        A percentage is of the whole wave, rounded down, at least 1; the last entry of a
        list repeats until the wave is exhausted.
        """
        if not self.batch:
            return [total] if total > 0 else []
        sizes: list[int] = []
        left, i = total, 0
        while left > 0:
            spec = self.batch[i]
            size = spec if isinstance(spec, int) else max(1, int(Decimal(spec[:-1]) * total / 100))
            sizes.append(min(size, left))
            left -= sizes[-1]
            i = min(i + 1, len(self.batch) - 1)
        return sizes


# Where each waves.N.match pattern was written: (line, key path), per wave number.
MatchLines = dict[int, list[tuple[int, str]]]


def read_waves(c: Checker, top: LMap) -> tuple[dict[int, WaveSettings], MatchLines]:
    """The ``waves:`` section, and where each match pattern sits (for later problems)."""
    m = c.mapping(top, "waves", "")
    waves: dict[int, WaveSettings] = {}
    where: MatchLines = {}
    for number, node in (m.items() if m else ()):
        path, line = join("waves", number), m.key_line(number)  # type: ignore[union-attr]
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            c.add(line, path, "wave numbers must be positive integers (1, 2, 3, ...). "
                  "Renumber this wave.")
            continue
        if isinstance(node, LScalar) and node.value is None:
            waves[number] = WaveSettings(number)
            continue
        if not c.expect(node, LMap, path, line):
            continue
        assert isinstance(node, LMap)
        c.keys(node, WAVE_KEYS, path)
        match = _match(c, node, path)
        where[number] = [(ln, key) for _, ln, key in match]
        verify = node.get("verify")
        waves[number] = WaveSettings(
            number=number,
            match=tuple(text for text, _, _ in match),
            parallel=c.integer(node, "parallel", path, minimum=1),
            batch=_batch(c, node, path),
            max_fail_percentage=c.number(node, "max_fail_percentage", path,
                                         minimum=0, maximum=100),
            max_failures=c.integer(node, "max_failures", path, minimum=0),
            soak_seconds=c.duration(node, "soak", path),
            approval=c.boolean(node, "approval", path, default=False),
            verify=None if verify is None else read_verify_layer(
                verify.plain(), join(path, "verify"), c.locator(verify, join(path, "verify"))),
        )
    return waves, where


def _match(c: Checker, m: LMap, path: str) -> list[tuple[str, int, str]]:
    """Patterns of ``waves.N.match`` with their line and key path."""
    node, full = m.get("match"), join(path, "match")
    if isinstance(node, LScalar) and isinstance(node.value, str):
        return [(node.value, m.key_line("match"), full)]  # one value, like a --limit
    return [(text, line, f"{full}[{i}]")
            for i, (text, line) in enumerate(c.strings(m, "match", path))]


def _batch(c: Checker, m: LMap, path: str) -> tuple[int | str, ...]:
    node = m.get("batch")
    if node is None:
        return ()
    full = join(path, "batch")
    if isinstance(node, LSeq) and not node.items:
        c.add(m.key_line("batch"), full, "must list at least one batch size.")
    items = [(n, f"{full}[{i}]", n.line) for i, n in enumerate(node)] if isinstance(
        node, LSeq) else [(node, full, m.key_line("batch"))]
    sizes: list[int | str] = []
    for item, where, line in items:
        value = item.value if isinstance(item, LScalar) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            sizes.append(value)
            continue
        pct = _PERCENT.fullmatch(value) if isinstance(value, str) else None
        if pct and 0 < Decimal(pct.group(1)) <= 100:
            sizes.append(f"{pct.group(1)}%")
            continue
        c.add(line, where, "must be a positive integer, a percentage such as '25%', or a "
              f"list of those (a ramp, e.g. [1, 5, '20%']), got {item.kind}.")
    return tuple(sizes)
