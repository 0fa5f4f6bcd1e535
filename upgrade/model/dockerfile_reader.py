"""Read a Dockerfile the way Docker does, remembering where every character came from.

Parser directives, ``\\`` or backtick line continuations, comment lines, heredocs and
global ``ARG`` defaults substituted into ``FROM`` are read as Docker reads them; for every
character of an effective image reference the scan keeps *where in the file it was
written*, so ``upgrade.model.dockerfile`` can rewrite exactly the version characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from upgrade.errors import Signal, VersionError
from upgrade.model.image import ImageRef, parse_image

_DIRECTIVE = re.compile(r"^\ufeff?[ \t]*#[ \t]*([A-Za-z]+)[ \t]*=[ \t]*(\S+)[ \t]*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEAD = re.compile(r"^[\s\ufeff]*([A-Za-z]+)(?=\s|$)")
_SKIP = re.compile(r"^[\s\ufeff]*(?:#|$)")
_HEREDOC = re.compile(r"<<(-?)[ \t]*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(\}|:?[-+?=])|([A-Za-z_][A-Za-z0-9_]*))")
_HYPHEN_TYPO = re.compile(r"astro-runtime-\d")
# Runs of characters that no quote, escape or variable state changes, per escape character.
_PLAIN = {escape: re.compile(f"[^{re.escape(escape)}\"'$]+") for escape in ("\\", "`")}

# Far above any real Dockerfile (the largest Astro projects' are a few KB) and image
# reference (Docker caps a reference at 255 characters); past these a file is refused
# before its ARGs can double a word into gigabytes.
MAX_DOCKERFILE_CHARS = 1024 * 1024
MAX_WORD_CHARS = 4096

# Where one character of an expanded word was written: (0-based line, column, ARG name).
Origin = tuple[int, int, str | None]


class Refusal(Signal):
    """A refusal located at a 0-based line; turned into a DockerfileError at the boundary."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class Unresolved(Signal):
    """A variable the FROM needs has no value the Dockerfile decides."""

    def __init__(self, name: str, reason: str, fix: str):
        super().__init__(reason)
        self.name, self.reason, self.fix = name, reason, fix


@dataclass(frozen=True)
class Word:
    """An expanded word and, per character, where in the file it was written."""

    text: str
    origins: tuple[Origin | None, ...]

    def span_location(self, start: int, end: int) -> tuple[int, int, int, str | None] | None:
        """(line, col_start, col_end, arg) if [start, end) was written contiguously, else None."""
        chunk = self.origins[start:end]
        if not chunk or chunk[0] is None:
            return None
        line, col, arg = chunk[0]
        for offset, origin in enumerate(chunk):
            if origin != (line, col + offset, arg):
                return None
        return line, col, col + len(chunk), arg

    def args_used(self) -> list[str]:
        """Names of the ARGs whose defaults supplied characters, in order of first use."""
        seen: dict[str, None] = {}
        for origin in self.origins:
            if origin is not None and origin[2] is not None:
                seen.setdefault(origin[2], None)
        return list(seen)


class Instruction(NamedTuple):
    """One instruction (a tuple: a file has many, and a plan reads thousands of files)."""

    keyword: str  # upper case
    start: int  # 0-based first line
    end: int  # 0-based last line
    lines: tuple[int, ...]  # the lines that carry its text (comment lines inside skipped)


@dataclass
class AstroFrom:
    line: int  # 0-based
    word: Word
    image: ImageRef

    @property
    def identity(self) -> object:
        return self.image.version if self.image.version is not None else str(self.image)


@dataclass
class Scan:
    """Everything the engine learned about one file."""

    text: str  # the file as read
    lines: list[str]  # split on "\n"; a CRLF line keeps its "\r"
    astro: list[AstroFrom] = field(default_factory=list)
    others: list[tuple[int, Word]] = field(default_factory=list)  # non-Astro FROMs
    final: AstroFrom | None = None  # the Astro FROM the last stage is rooted in, if any


def read_dockerfile(text: str) -> Scan:
    if len(text) > MAX_DOCKERFILE_CHARS:
        raise Refusal(
            text.count("\n", 0, MAX_DOCKERFILE_CHARS),
            f"the Dockerfile is longer than {MAX_DOCKERFILE_CHARS:,} characters (the limit is "
            "reached at this line). That is not an Astro project's Dockerfile; check the path, "
            "then run again.",
        )
    lines = text.split("\n")
    _check_characters(lines)
    bodies = [line[:-1] if line.endswith("\r") else line for line in lines]
    escape, first = _directives(bodies)
    scan = Scan(text, lines)
    table: dict[str, tuple[int, Word | None, Unresolved | None]] = {}
    late: dict[str, int] = {}  # ARGs declared after the first FROM: invisible to FROM lines
    stages: dict[str, AstroFrom | None] = {}  # stage name -> the Astro FROM it is rooted in
    seen_from = False
    typo_lines: list[int] = []
    early: Instruction | None = None  # the first instruction but ARG before any FROM
    for ins in _instructions(bodies, first, escape):
        if not seen_from and ins.keyword not in ("ARG", "FROM"):
            early = early or ins
            continue
        if ins.keyword == "FROM" and early is not None:
            raise Refusal(
                early.start,
                f"{early.keyword} before the first FROM: Docker allows only ARG there (\"no "
                "build stage in current context\"), so this file does not build. Move it below "
                "the FROM, then run again.",
            )
        if ins.keyword == "ARG":
            if seen_from:
                # Stage ARGs matter only to name them in messages; a malformed one is
                # Docker's problem, not a reason to refuse the FROM.
                try:
                    for line, name, _ in _arg_values(bodies, ins, escape):
                        late.setdefault(name, line)
                except Refusal:
                    pass
                continue
            for line, name, value in _arg_values(bodies, ins, escape):
                table[name] = _declare(name, line, value, table, escape)
        elif ins.keyword == "FROM":
            seen_from = True
            name, word = _read_from(bodies, ins, escape, table, late)
            root: AstroFrom | None = None
            if word.text.lower() in stages:  # FROM stage1 AS stage2: not an image
                root = stages[word.text.lower()]
            else:
                image = _parse(word, ins.start)
                if image.kind in ("runtime", "runtime-dev", "certified"):
                    root = AstroFrom(ins.start, word, image)
                    scan.astro.append(root)
                else:
                    scan.others.append((ins.start, word))
                    if _HYPHEN_TYPO.search(word.text):
                        typo_lines.append(ins.start)
            scan.final = root
            if name is not None:
                stages[name] = root
    if not scan.astro:
        raise _no_astro_image(scan, typo_lines)
    return scan


def _check_characters(lines: list[str]) -> None:
    """Refuse characters Docker cannot build from: a NUL byte anywhere, and a byte-order
    mark anywhere but the very start of the file (the only place Docker skips one)."""
    for index, line in enumerate(lines):
        nul = line.find("\x00")
        if nul >= 0:
            raise Refusal(
                index,
                f"a NUL byte at column {nul + 1}: this is not a text file Docker can build. "
                "Remove the byte (an editor or a bad copy put it there), then run again.",
            )
        bom = line.find("\ufeff", 1 if index == 0 else 0)
        if bom >= 0:
            raise Refusal(
                index,
                f"a byte-order mark (U+FEFF) at column {bom + 1}: Docker skips one only at "
                "the very start of the file, so here it is part of the text and the file does "
                "not build. Remove it (save the file as UTF-8 without BOM), then run again.",
            )


def _directives(bodies: list[str]) -> tuple[str, int]:
    """The escape character and the index of the first line after the parser directives."""
    escape = "\\"
    index = 0
    while index < len(bodies):
        match = _DIRECTIVE.match(bodies[index])
        if match is None or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
        index += 1
    return escape, index


def _continues(body: str, escape: str) -> bool:
    return body.rstrip().endswith(escape) and not _SKIP.match(body)


def _instructions(bodies: list[str], first: int, escape: str) -> Iterator[Instruction]:
    """Each instruction with the lines that carry it; comments, blanks and heredocs skipped."""
    count = len(bodies)
    index = first
    while index < count:
        body = bodies[index]
        head = _HEAD.match(body)
        if _SKIP.match(body) or head is None:
            index += 1
            continue
        carried = [index]
        while _continues(bodies[carried[-1]], escape):
            nxt = carried[-1] + 1
            while nxt < count and _SKIP.match(bodies[nxt]):  # Docker drops these inside
                nxt += 1
            if nxt >= count:
                break
            carried.append(nxt)
        keyword = head.group(1).upper()
        yield Instruction(keyword, index, carried[-1], tuple(carried))
        index = carried[-1] + 1
        if keyword in ("RUN", "COPY", "ADD"):
            index = _skip_heredocs(bodies, carried, index)


def _skip_heredocs(bodies: list[str], carried: list[int], index: int) -> int:
    """Skip heredoc bodies (``RUN <<EOF``), whose lines may look like instructions."""
    for line in carried:
        for match in _HEREDOC.finditer(bodies[line]):
            strip_tabs, delimiter = match.group(1) == "-", match.group(3)
            while index < len(bodies):
                candidate = bodies[index].lstrip("\t") if strip_tabs else bodies[index]
                index += 1
                if candidate == delimiter:
                    break
    return index


def _words(body: str, start: int, escape: str, line: int) -> list[tuple[int, str]]:
    """Whitespace-separated words of ``body`` from ``start``, quotes kept, with columns."""
    words: list[tuple[int, str]] = []
    index, size = start, len(body)
    while index < size:
        while index < size and body[index] in " \t":
            index += 1
        if index >= size:
            break
        begin, quote = index, None
        while index < size:
            char = body[index]
            if quote is not None:
                if char == escape and quote == '"' and index + 1 < size:
                    index += 2
                    continue
                if char == quote:
                    quote = None
            elif char in " \t":
                break
            elif char == escape and index + 1 < size:
                index += 2
                continue
            elif char in "\"'":
                quote = char
            index += 1
        if quote is not None:
            raise Refusal(line, f"unterminated {quote} quote. Close the quote, then run again.")
        words.append((begin, body[begin:index]))
    return words


def _arg_values(
    bodies: list[str], ins: Instruction, escape: str
) -> Iterator[tuple[int, str, tuple[int, str] | None]]:
    """(line, name, (column, raw default) or None) for every name an ARG declares."""
    for line in ins.lines:
        body = bodies[line]
        start = _HEAD.match(body).end() if line == ins.start else 0  # type: ignore[union-attr]
        if line != ins.end:
            body = body.rstrip()[:-1]  # the continuation escape
        for col, word in _words(body, start, escape, line):
            name, equals, raw = word.partition("=")
            if not _NAME.fullmatch(name):
                raise Refusal(
                    line,
                    f"cannot read '{word}' in this ARG: expected NAME or NAME=value. "
                    "Fix the ARG line, then run again.",
                )
            yield line, name, ((col + len(name) + 1, raw) if equals else None)


def _declare(
    name: str,
    line: int,
    value: tuple[int, str] | None,
    table: dict[str, tuple[int, Word | None, Unresolved | None]],
    escape: str,
) -> tuple[int, Word | None, Unresolved | None]:
    """Record a global ARG; an error in its default is kept until a FROM needs it."""
    if value is None:
        return line, None, None
    col, raw = value
    try:
        return line, _expand(raw, line, col, name, _lookup(table, {}), escape), None
    except Unresolved as missing:
        return line, None, missing


def _lookup(
    table: dict[str, tuple[int, Word | None, Unresolved | None]], late: dict[str, int]
) -> Callable[[str], Word]:
    snapshot = dict(table)  # an ARG default sees only the ARGs declared before it

    def lookup(name: str) -> Word:
        if name not in snapshot:
            if name in late:
                raise Unresolved(
                    name,
                    f"it uses ${{{name}}}, but ARG {name} is declared on line {late[name] + 1}, "
                    "after the first FROM, where FROM lines cannot see it (Docker substitutes "
                    "an empty string)",
                    f"Move ARG {name}=<value> above the first FROM",
                )
            raise Unresolved(
                name,
                f"it uses ${{{name}}}, but no ARG {name} is declared above the first FROM "
                "(Docker substitutes an empty string)",
                f"Declare ARG {name}=<value> above the first FROM",
            )
        line, word, error = snapshot[name]
        if error is not None:
            raise Unresolved(
                error.name, f"{error.reason}; ARG {name} on line {line + 1} is built from it",
                error.fix,
            )
        if word is None:
            raise Unresolved(
                name,
                f"it uses ${{{name}}}, but ARG {name} on line {line + 1} has no default, so "
                "the image is chosen outside the Dockerfile (a --build-arg in a Makefile, "
                "compose file or CI), and astro deploy passes none",
                f"Give ARG {name} a default holding the pinned image or version "
                f"(ARG {name}=...)",
            )
        return word

    return lookup


def _expand(
    raw: str, line: int, col: int, arg: str | None, lookup: Callable[[str], Word], escape: str
) -> Word:
    """Expand quotes, escapes and $VAR / ${VAR} as Docker's shell lexer does, keeping origins."""
    chars: list[str] = []
    origins: list[Origin | None] = []

    def emit(char: str, offset: int) -> None:
        chars.append(char)
        origins.append((line, col + offset, arg))

    plain = _PLAIN[escape]
    index, quote = 0, None
    while index < len(raw):
        run = plain.match(raw, index)
        if run is not None:
            # Characters that are themselves in every quoting state, taken as one run (an
            # image reference is mostly such characters; one call per character was half
            # of reading a Dockerfile).
            end = run.end()
            chars.extend(raw[index:end])
            origins.extend([(line, col + offset, arg) for offset in range(index, end)])
            index = end
            continue
        char = raw[index]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                emit(char, index)
            index += 1
        elif char == escape and index + 1 < len(raw):
            if quote == '"' and raw[index + 1] not in ('"', escape, "$"):
                emit(char, index)
                index += 1
            else:
                emit(raw[index + 1], index + 1)
                index += 2
        elif char == '"':
            quote = None if quote == '"' else '"'
            index += 1
        elif char == "'" and quote is None:
            quote = "'"
            index += 1
        elif char == "$" and (match := _VAR.match(raw, index)) is not None:
            name = match.group(1) or match.group(3)
            if match.group(2) not in (None, "}"):
                raise Unresolved(
                    name,
                    f"it uses the shell-style default '${{{name}{match.group(2)}...}}', whose "
                    "value may come from outside the Dockerfile and which this tool does not "
                    "rewrite",
                    f"Write ARG {name}=<image or version> above the first FROM and use "
                    f"${{{name}}} in the FROM",
                )
            value = lookup(name)
            if len(chars) + len(value.text) > MAX_WORD_CHARS:
                raise Refusal(
                    line,
                    f"${{{name}}} makes this word longer than {MAX_WORD_CHARS:,} characters "
                    "(ARGs that repeat each other grow exponentially). Write the image or "
                    "version out, then run again.",
                )
            chars.extend(value.text)
            origins.extend(value.origins)
            index = match.end()
        else:
            emit(char, index)
            index += 1
    return Word("".join(chars), tuple(origins))


def _read_from(
    bodies: list[str],
    ins: Instruction,
    escape: str,
    table: dict[str, tuple[int, Word | None, Unresolved | None]],
    late: dict[str, int],
) -> tuple[str | None, Word]:
    """The FROM's stage name (lower case) and its expanded image word."""
    line = ins.start
    if ins.end != ins.start:
        raise Refusal(
            line,
            f"this FROM continues over lines {line + 1}-{ins.end + 1}. Join the FROM "
            "instruction onto one line, then run again.",
        )
    body = bodies[line]
    words = _words(body, _HEAD.match(body).end(), escape, line)  # type: ignore[union-attr]
    for col, word in words:
        if word.startswith("#"):
            raise Refusal(
                line,
                f"text after the image starting at column {col + 1} ('{word} ...'): Docker "
                "does not allow comments after an instruction, so this FROM does not build. "
                "Move the comment to its own line above the FROM, then run again.",
            )
    flags = 0
    while flags < len(words) and words[flags][1].startswith("--"):
        flags += 1
    rest = words[flags:]
    if not rest:
        raise Refusal(line, "this FROM names no image. Fix the FROM line, then run again.")
    if len(rest) == 3 and rest[1][1].lower() == "as":
        stage_name: str | None = rest[2][1].lower()
    elif len(rest) == 1:
        stage_name = None
    else:
        extra = " ".join(w for _, w in rest[1:])
        raise Refusal(
            line,
            f"unexpected text '{extra}' after the image; a FROM is "
            "'FROM [--platform=...] <image> [AS <name>]'. Fix the FROM line, then run again.",
        )
    col, raw = rest[0]
    try:
        word = _expand(raw, line, col, None, _lookup(table, late), escape)
    except Unresolved as missing:
        raise Refusal(
            line,
            f"cannot tell which image this FROM builds from: {missing.reason}. {missing.fix}, "
            "or upgrade this Dockerfile by hand, then run again.",
        ) from None
    return stage_name, word


def _parse(word: Word, line: int) -> ImageRef:
    where = via(word)
    if word.text != word.text.strip() or not word.text:
        raise Refusal(
            line,
            f"the image '{word.text}'{where} is empty or has surrounding spaces. Fix it, then "
            "run again.",
        )
    try:
        return parse_image(word.text)
    except VersionError as exc:
        hint = ""
        if "<" in word.text or "{{" in word.text:
            hint = " It looks like an unfilled placeholder from documentation or a template."
        raise Refusal(
            line, f"{exc}{where}{hint} Write an exact Runtime tag in the FROM, then run again."
        ) from None


def via(word: Word) -> str:
    """`` (from ARG X)`` when ARG defaults supplied characters of ``word``."""
    names = word.args_used()
    if not names:
        return ""
    return f" (from ARG{'s' if len(names) > 1 else ''} {', '.join(names)})"


def _no_astro_image(scan: Scan, typo_lines: list[int]) -> Refusal:
    wanted = (
        "This tool rewrites only Dockerfiles built FROM quay.io/astronomer/astro-runtime:X.Y.Z "
        "or astrocrpublic.azurecr.io/runtime:A.B-N; check that this is the Astro project's "
        "root Dockerfile."
    )
    if not scan.others:
        return Refusal(0, f"no FROM instruction found. {wanted}")
    found = ", ".join(f"line {line + 1}: {word.text}" for line, word in scan.others)
    hint = ""
    if typo_lines:
        hint = (
            f" Line {typo_lines[0] + 1} writes 'astro-runtime-<version>' with a hyphen; "
            "the tag needs a colon: 'astro-runtime:<version>'."
        )
    return Refusal(
        scan.others[0][0], f"no Astro Runtime base image found ({found}).{hint} {wanted}"
    )
