"""Untrusted text in the Markdown reports: shown as text, never read as markup or HTML.

Names, reasons and failure messages come from the inventory, from people (approval and
gate reasons) and from other systems (Astro's, Airflow's, git's words). A Markdown viewer
that allows HTML would run a ``<script>`` in one, and a ``[link](javascript:…)`` would be
a link, so every such text passes :func:`text`, as the HTML report escapes its text once
(``upgrade.report.html``). Whatever a report writes also passes the one redaction rule.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

# The ASCII punctuation that starts or ends Markdown inline syntax (emphasis, code, links
# and images, strikethrough, table cells, escapes): a backslash makes each literal. An
# underscore inside a word (deployed_ne_dockerfile) is never emphasis: it is left as it is.
_ACTIVE = re.compile(r"[\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def text(value: object) -> str:
    """``value`` as literal Markdown text on one line: Markdown's active characters
    backslash-escaped, ``&``, ``<`` and ``>`` as HTML entities, line breaks as spaces."""
    one_line = " ".join(str(value).splitlines())
    return html.escape(_ACTIVE.sub(lambda m: "\\" + m.group(), one_line), quote=False)


def row(cells: Iterable[object]) -> str:
    """One table row of untrusted cells."""
    return "| " + " | ".join(text(c) for c in cells) + " |"
