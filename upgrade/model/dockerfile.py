"""Find an Astro project Dockerfile's Runtime base image and retarget it with a minimal diff.

Pure text in, text out. The engine reads the file the way Docker does (parser
directives, ``\\`` or backtick line continuations, comment lines, heredocs, global
``ARG`` defaults substituted into ``FROM``), remembers for every character of the
effective image reference *where in the file it came from*, and rewrites only the
characters of the version (plus the repository when crossing Airflow 2 -> 3). So
``ARG`` indirection, quoting, variant suffixes, ``--platform``, ``AS`` aliases,
comments, CRLF and the final-newline state all survive byte for byte.

Shapes it refuses, each with ``file:line`` and what to do (reference/dockerfiles.md):

* no Astro Runtime base image; two different Astronomer base images in one file;
* ``ap-airflow`` (Astronomer Certified: manual migration), ``latest`` or floating tags
  (unpinned), pre-release repositories and tags, digest pins (``@sha256:``);
* a ``FROM`` that depends on an ``ARG`` without a default, declared after the first
  ``FROM``, or not declared, and shell-style ``${VAR:-default}`` (the value is decided
  outside the Dockerfile, and ``astro deploy`` never passes it);
* a ``FROM`` split over several lines, or followed by an inline ``# comment`` (Docker
  rejects that file, so rewriting it would only hide the problem);
* a version assembled from several places, an ``ARG`` shared with a non-Astro stage,
  and crossing Airflow 2 -> 3 from a private mirror (there is no known Airflow 3 path
  on the mirror);
* any retarget to a lower version than the file holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from upgrade.errors import DockerfileError, VersionError
from upgrade.model.image import ImageRef, parse_image, require_pinned_runtime
from upgrade.model.versions import RuntimeVersion

# Registries whose Astro repositories are public; crossing to Airflow 3 from anything
# else (a corporate mirror) would silently point the build at the public registry.
_PUBLIC_HOSTS = frozenset({"quay.io", "astrocrpublic.azurecr.io", "air.astronomer.io"})
_DIRECTIVE = re.compile(r"^\ufeff?[ \t]*#[ \t]*([A-Za-z]+)[ \t]*=[ \t]*(\S+)[ \t]*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEAD = re.compile(r"^[\s\ufeff]*([A-Za-z]+)(?=\s|$)")
_SKIP = re.compile(r"^[\s\ufeff]*(?:#|$)")
_HEREDOC = re.compile(r"<<(-?)[ \t]*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(\}|:?[-+?=])|([A-Za-z_][A-Za-z0-9_]*))")
_HYPHEN_TYPO = re.compile(r"astro-runtime-\d")

# Where one character of an expanded word was written: (0-based line, column, ARG name).
Origin = tuple[int, int, str | None]


@dataclass(frozen=True)
class BaseImage:
    """The Astro stage's base image as Docker would build it, and where its version lives."""

    line: int  # 1-based line of the live FROM of the Astro stage
    edit_line: int  # 1-based line whose text a retarget changes (the FROM or the ARG)
    image: ImageRef  # the effective image, ARG defaults resolved
    version: RuntimeVersion  # pinned version (unpinned/latest/floating is refused)
    arg: str | None  # name of the ARG that carries the version or the image, if any


class _Refusal(Exception):
    """A refusal located at a 0-based line; turned into a DockerfileError at the boundary."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _Unresolved(Exception):
    """A variable the FROM needs has no value the Dockerfile decides."""

    def __init__(self, name: str, reason: str, fix: str):
        super().__init__(reason)
        self.name, self.reason, self.fix = name, reason, fix


@dataclass(frozen=True)
class _Word:
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


@dataclass(frozen=True)
class _Instruction:
    keyword: str  # upper case
    start: int  # 0-based first line
    end: int  # 0-based last line
    lines: tuple[int, ...]  # the lines that carry its text (comment lines inside skipped)


@dataclass
class _AstroFrom:
    line: int  # 0-based
    word: _Word
    image: ImageRef

    @property
    def identity(self) -> object:
        return self.image.version if self.image.version is not None else str(self.image)


@dataclass
class _Scan:
    """Everything the engine learned about one file."""

    lines: list[str]  # split on "\n"; a CRLF line keeps its "\r"
    astro: list[_AstroFrom] = field(default_factory=list)
    others: list[tuple[int, _Word]] = field(default_factory=list)  # non-Astro FROMs
    final: _AstroFrom | None = None  # the Astro FROM the last stage is rooted in, if any


def find_base_image(text: str, *, path: str) -> BaseImage:
    """Locate the Astro Runtime base image; raise DockerfileError (file:line) when unsafe."""
    scan = _scan_or_raise(text, path)
    return _base_image(scan, path)


def retarget(text: str, version: RuntimeVersion, *, path: str) -> str:
    """Return ``text`` with the Astro base image moved to ``version``, changing nothing else."""
    scan = _scan_or_raise(text, path)
    base = _base_image(scan, path)
    if version == base.version:
        return text
    if version < base.version:
        raise DockerfileError(
            f"{path}:{base.line}: refusing to lower the Runtime from {base.version} to "
            f"{version}. A Runtime can never be downgraded once deployed; pick a target at "
            f"or above {base.version}."
        )
    try:
        edits = _edits(scan, version)
    except _Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None
    lines = list(scan.lines)
    for (line, start, end), new in sorted(edits.items(), reverse=True):
        lines[line] = lines[line][:start] + new + lines[line][end:]
    result = "\n".join(lines)
    _check_result(result, scan, version, path)
    return result


# --- reading the file --------------------------------------------------------------


def _scan_or_raise(text: str, path: str) -> _Scan:
    try:
        return _scan(text)
    except _Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None


def _scan(text: str) -> _Scan:
    lines = text.split("\n")
    bodies = [line[:-1] if line.endswith("\r") else line for line in lines]
    escape, first = _directives(bodies)
    scan = _Scan(lines)
    table: dict[str, tuple[int, _Word | None, _Unresolved | None]] = {}
    late: dict[str, int] = {}  # ARGs declared after the first FROM: invisible to FROM lines
    stages: dict[str, _AstroFrom | None] = {}  # stage name -> the Astro FROM it is rooted in
    seen_from = False
    typo_lines: list[int] = []
    for ins in _instructions(bodies, first, escape):
        if ins.keyword == "ARG":
            if seen_from:
                # Stage ARGs matter only to name them in messages; a malformed one is
                # Docker's problem, not a reason to refuse the FROM.
                try:
                    for line, name, _ in _arg_values(bodies, ins, escape):
                        late.setdefault(name, line)
                except _Refusal:
                    pass
                continue
            for line, name, value in _arg_values(bodies, ins, escape):
                table[name] = _declare(name, line, value, table, escape)
        elif ins.keyword == "FROM":
            seen_from = True
            name, word = _read_from(bodies, ins, escape, table, late)
            root: _AstroFrom | None = None
            if word.text.lower() in stages:  # FROM stage1 AS stage2: not an image
                root = stages[word.text.lower()]
            else:
                image = _parse(word, ins.start)
                if image.kind in ("runtime", "runtime-dev", "certified"):
                    root = _AstroFrom(ins.start, word, image)
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


def _instructions(bodies: list[str], first: int, escape: str) -> Iterator[_Instruction]:
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
        yield _Instruction(keyword, index, carried[-1], tuple(carried))
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
            raise _Refusal(line, f"unterminated {quote} quote. Close the quote, then run again.")
        words.append((begin, body[begin:index]))
    return words


def _arg_values(
    bodies: list[str], ins: _Instruction, escape: str
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
                raise _Refusal(
                    line,
                    f"cannot read '{word}' in this ARG: expected NAME or NAME=value. "
                    "Fix the ARG line, then run again.",
                )
            yield line, name, ((col + len(name) + 1, raw) if equals else None)


def _declare(
    name: str,
    line: int,
    value: tuple[int, str] | None,
    table: dict[str, tuple[int, _Word | None, _Unresolved | None]],
    escape: str,
) -> tuple[int, _Word | None, _Unresolved | None]:
    """Record a global ARG; an error in its default is kept until a FROM needs it."""
    if value is None:
        return line, None, None
    col, raw = value
    try:
        return line, _expand(raw, line, col, name, _lookup(table, {}), escape), None
    except _Unresolved as missing:
        return line, None, missing


def _lookup(
    table: dict[str, tuple[int, _Word | None, _Unresolved | None]], late: dict[str, int]
) -> Callable[[str], _Word]:
    snapshot = dict(table)  # an ARG default sees only the ARGs declared before it

    def lookup(name: str) -> _Word:
        if name not in snapshot:
            if name in late:
                raise _Unresolved(
                    name,
                    f"it uses ${{{name}}}, but ARG {name} is declared on line {late[name] + 1}, "
                    "after the first FROM, where FROM lines cannot see it (Docker substitutes "
                    "an empty string)",
                    f"Move ARG {name}=<value> above the first FROM",
                )
            raise _Unresolved(
                name,
                f"it uses ${{{name}}}, but no ARG {name} is declared above the first FROM "
                "(Docker substitutes an empty string)",
                f"Declare ARG {name}=<value> above the first FROM",
            )
        line, word, error = snapshot[name]
        if error is not None:
            raise _Unresolved(
                error.name, f"{error.reason}; ARG {name} on line {line + 1} is built from it",
                error.fix,
            )
        if word is None:
            raise _Unresolved(
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
    raw: str, line: int, col: int, arg: str | None, lookup: Callable[[str], _Word], escape: str
) -> _Word:
    """Expand quotes, escapes and $VAR / ${VAR} as Docker's shell lexer does, keeping origins."""
    chars: list[str] = []
    origins: list[Origin | None] = []

    def emit(char: str, offset: int) -> None:
        chars.append(char)
        origins.append((line, col + offset, arg))

    index, quote = 0, None
    while index < len(raw):
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
                raise _Unresolved(
                    name,
                    f"it uses the shell-style default '${{{name}{match.group(2)}...}}', whose "
                    "value may come from outside the Dockerfile and which this tool does not "
                    "rewrite",
                    f"Write ARG {name}=<image or version> above the first FROM and use "
                    f"${{{name}}} in the FROM",
                )
            value = lookup(name)
            chars.extend(value.text)
            origins.extend(value.origins)
            index = match.end()
        else:
            emit(char, index)
            index += 1
    return _Word("".join(chars), tuple(origins))


def _read_from(
    bodies: list[str],
    ins: _Instruction,
    escape: str,
    table: dict[str, tuple[int, _Word | None, _Unresolved | None]],
    late: dict[str, int],
) -> tuple[str | None, _Word]:
    """The FROM's stage name (lower case) and its expanded image word."""
    line = ins.start
    if ins.end != ins.start:
        raise _Refusal(
            line,
            f"this FROM continues over lines {line + 1}-{ins.end + 1}. Join the FROM "
            "instruction onto one line, then run again.",
        )
    body = bodies[line]
    words = _words(body, _HEAD.match(body).end(), escape, line)  # type: ignore[union-attr]
    for col, word in words:
        if word.startswith("#"):
            raise _Refusal(
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
        raise _Refusal(line, "this FROM names no image. Fix the FROM line, then run again.")
    if len(rest) == 3 and rest[1][1].lower() == "as":
        stage_name: str | None = rest[2][1].lower()
    elif len(rest) == 1:
        stage_name = None
    else:
        extra = " ".join(w for _, w in rest[1:])
        raise _Refusal(
            line,
            f"unexpected text '{extra}' after the image; a FROM is "
            "'FROM [--platform=...] <image> [AS <name>]'. Fix the FROM line, then run again.",
        )
    col, raw = rest[0]
    try:
        word = _expand(raw, line, col, None, _lookup(table, late), escape)
    except _Unresolved as missing:
        raise _Refusal(
            line,
            f"cannot tell which image this FROM builds from: {missing.reason}. {missing.fix}, "
            "or upgrade this Dockerfile by hand, then run again.",
        ) from None
    return stage_name, word


def _parse(word: _Word, line: int) -> ImageRef:
    where = _via(word)
    if word.text != word.text.strip() or not word.text:
        raise _Refusal(
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
        raise _Refusal(
            line, f"{exc}{where}{hint} Write an exact Runtime tag in the FROM, then run again."
        ) from None


def _via(word: _Word) -> str:
    names = word.args_used()
    if not names:
        return ""
    return f" (from ARG{'s' if len(names) > 1 else ''} {', '.join(names)})"


def _no_astro_image(scan: _Scan, typo_lines: list[int]) -> _Refusal:
    wanted = (
        "This tool rewrites only Dockerfiles built FROM quay.io/astronomer/astro-runtime:X.Y.Z "
        "or astrocrpublic.azurecr.io/runtime:A.B-N; check that this is the Astro project's "
        "root Dockerfile."
    )
    if not scan.others:
        return _Refusal(0, f"no FROM instruction found. {wanted}")
    found = ", ".join(f"line {line + 1}: {word.text}" for line, word in scan.others)
    hint = ""
    if typo_lines:
        hint = (
            f" Line {typo_lines[0] + 1} writes 'astro-runtime-<version>' with a hyphen; "
            "the tag needs a colon: 'astro-runtime:<version>'."
        )
    return _Refusal(
        scan.others[0][0], f"no Astro Runtime base image found ({found}).{hint} {wanted}"
    )


# --- judging what was found ----------------------------------------------------------


def _base_image(scan: _Scan, path: str) -> BaseImage:
    try:
        first = _check_astro(scan)
        version_span = _version_span(first)
    except _Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None
    assert first.image.version is not None
    return BaseImage(
        line=first.line + 1,
        edit_line=version_span[0] + 1,
        image=first.image,
        version=first.image.version,
        arg=version_span[3],
    )


def _check_astro(scan: _Scan) -> _AstroFrom:
    """The Astro base the built image runs on, if every Astro stage is safe to retarget."""
    first = scan.astro[0]
    for other in scan.astro[1:]:
        if other.identity != first.identity:
            raise _Refusal(
                other.line,
                f"this FROM uses {other.image}{_via(other.word)}, but line {first.line + 1} "
                f"uses {first.image}{_via(first.word)}: two different Astronomer base images "
                "in one Dockerfile. The tool upgrades one Runtime version per Dockerfile; make "
                "every Astro stage use the same Runtime (an ap-airflow stage needs a manual "
                "migration), then run again.",
            )
    for stage in scan.astro:
        image, where = stage.image, _via(stage.word)
        if image.digest is not None:
            raise _Refusal(
                stage.line,
                f"{image}{where} is pinned by digest. The digest, not the tag, decides what "
                "Docker builds, and this tool cannot look up the digest of the new version. "
                "Remove the '@sha256:...' part (keep the tag) or upgrade this file by hand.",
            )
        if image.kind == "runtime-dev" or (
            image.version is not None and image.version.is_prerelease
        ):
            raise _Refusal(
                stage.line,
                f"{image}{where} is a pre-release Runtime (alpha, nightly or dev build). This "
                "tool only moves between released versions; pin a released Runtime by hand "
                "(quay.io/astronomer/astro-runtime:X.Y.Z or "
                "astrocrpublic.azurecr.io/runtime:A.B-N), then run again.",
            )
        try:
            require_pinned_runtime(image)
        except VersionError as exc:
            raise _Refusal(stage.line, f"{_with_via(str(exc), image, where)}") from None
        _version_span(stage)
    # What astro deploy ships is the last stage; report the Astro FROM it is rooted in.
    return scan.final or first


def _with_via(message: str, image: ImageRef, where: str) -> str:
    text = str(image)
    return message.replace(text, text + where, 1) if where else message


def _version_span(stage: _AstroFrom) -> tuple[int, int, int, str | None]:
    """Where the version characters were written: (line, col_start, col_end, arg)."""
    image = stage.image
    assert image.version is not None and image.tag is not None
    core = image.version.raw
    start = len(image.repository) + 1
    if not image.tag.startswith(core):  # parse_image guarantees it; a guard, not a branch
        raise _Refusal(stage.line, f"cannot find the version in tag '{image.tag}'.")
    location = stage.word.span_location(start, start + len(core))
    if location is None:
        raise _Refusal(
            stage.line,
            f"the version {core} of {image}{_via(stage.word)} is assembled from several "
            "places (ARGs, quotes or escapes), so it cannot be changed in one spot. Write the "
            "whole version in one ARG default or in the FROM line, then run again.",
        )
    return location


def _edits(scan: _Scan, version: RuntimeVersion) -> dict[tuple[int, int, int], str]:
    """(line, col_start, col_end) -> new text for every Astro stage; shared spans once."""
    edits: dict[tuple[int, int, int], str] = {}
    for stage in scan.astro:
        line, start, end, _ = _version_span(stage)
        _add_edit(edits, (line, start, end), str(version), stage.line)
        target = stage.image.retarget(version)
        if target.repository != stage.image.repository:
            _add_edit(edits, _repository_span(stage, target), target.repository, stage.line)
    for line, word in scan.others:
        for origin in word.origins:
            if origin is None:
                continue
            for (edit_line, start, end), _ in edits.items():
                if origin[0] == edit_line and start <= origin[1] < end:
                    raise _Refusal(
                        edit_line,
                        f"the characters this retarget would change are also used by the "
                        f"non-Astro FROM on line {line + 1} ({word.text}), which would change "
                        "too. Give that stage its own ARG, then run again.",
                    )
    return edits


def _repository_span(stage: _AstroFrom, target: ImageRef) -> tuple[int, int, int]:
    image = stage.image
    host = image.repository.split("/", 1)[0]
    if host.lower() not in _PUBLIC_HOSTS:
        raise _Refusal(
            stage.line,
            f"{image} comes from the mirror '{host}', and moving to {target.tag} means moving "
            f"to the Airflow 3 repository {target.repository}, whose path on your mirror this "
            "tool cannot know. Change the FROM to your mirror's Airflow 3 Runtime by hand.",
        )
    location = stage.word.span_location(0, len(image.repository))
    if location is None:
        raise _Refusal(
            stage.line,
            f"moving to {target.tag} needs the repository {target.repository}, but "
            f"{image.repository} is assembled from several places in this Dockerfile. Write "
            "the repository in one ARG default or in the FROM line, then run again.",
        )
    return location[:3]


def _add_edit(
    edits: dict[tuple[int, int, int], str], key: tuple[int, int, int], new: str, from_line: int
) -> None:
    line, start, end = key
    for (other_line, other_start, other_end), other_new in edits.items():
        same = (other_line, other_start, other_end) == key
        if same and other_new == new:
            return
        if other_line == line and start < other_end and other_start < end:
            raise _Refusal(
                from_line,
                "two Astro stages need conflicting changes to the same characters. Make the "
                "stages use the same image, then run again.",
            )
    edits[key] = new


def _check_result(result: str, before: _Scan, version: RuntimeVersion, path: str) -> None:
    """Defence in depth: the rewritten file must read back as the intended images."""
    after = _scan_or_raise(result, path)
    expected = [str(stage.image.retarget(version)) for stage in before.astro]
    actual = [str(stage.image) for stage in after.astro]
    if actual != expected:
        raise DockerfileError(
            f"{path}:{before.astro[0].line + 1}: the rewrite would build {actual} instead of "
            f"{expected}; nothing was changed. Please report this Dockerfile shape."
        )
