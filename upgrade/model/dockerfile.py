"""Find an Astro project Dockerfile's Runtime base image and retarget it with a minimal diff.

Pure text in, text out. The file is read the way Docker reads it
(``upgrade.model.dockerfile_reader``, which remembers for every character of the effective
image reference where in the file it came from), and only the characters of the version
are rewritten (plus the repository when crossing Airflow 2 -> 3). So
``ARG`` indirection, quoting, variant suffixes, ``--platform``, ``AS`` aliases,
comments, CRLF and the final-newline state all survive byte for byte.

Shapes it refuses, each with ``file:line`` and what to do:

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

from dataclasses import dataclass, field

from upgrade.errors import DockerfileError, VersionError
from upgrade.model.dockerfile_reader import AstroFrom, Refusal, Scan, read_dockerfile, via
from upgrade.model.image import ImageRef, require_pinned_runtime
from upgrade.model.versions import RuntimeVersion

# Registries whose Astro repositories are public; crossing to Airflow 3 from anything
# else (a corporate mirror) would silently point the build at the public registry.
_PUBLIC_HOSTS = frozenset({"quay.io", "astrocrpublic.azurecr.io", "air.astronomer.io"})


@dataclass(frozen=True)
class BaseImage:
    """The Astro stage's base image as Docker would build it, and where its version lives."""

    line: int  # 1-based line of the live FROM of the Astro stage
    edit_line: int  # 1-based line whose text a retarget changes (the FROM or the ARG)
    image: ImageRef  # the effective image, ARG defaults resolved
    version: RuntimeVersion  # pinned version (unpinned/latest/floating is refused)
    arg: str | None  # name of the ARG that carries the version or the image, if any
    # How the file was read, so a retarget of the same text need not read it again.
    scan: Scan | None = field(default=None, compare=False, repr=False)


def find_base_image(text: str, *, path: str) -> BaseImage:
    """Locate the Astro Runtime base image; raise DockerfileError (file:line) when unsafe."""
    scan = _scan_or_raise(text, path)
    return _base_image(scan, path)


def retarget(text: str, version: RuntimeVersion, *, path: str,
             base: BaseImage | None = None) -> str:
    """Return ``text`` with the Astro base image moved to ``version``, changing nothing else.

    ``base`` is what :func:`find_base_image` found in ``text`` (when the caller has it):
    the file is then not read a second time. One found in another text is ignored.
    """
    if base is None or base.scan is None or base.scan.text != text:
        base = find_base_image(text, path=path)
    scan = base.scan
    assert scan is not None
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
    except Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None
    lines = list(scan.lines)
    for (line, start, end), new in sorted(edits.items(), reverse=True):
        lines[line] = lines[line][:start] + new + lines[line][end:]
    result = "\n".join(lines)
    _check_result(result, scan, version, path)
    return result


def _scan_or_raise(text: str, path: str) -> Scan:
    try:
        return read_dockerfile(text)
    except Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None


# --- judging what was found ----------------------------------------------------------


def _base_image(scan: Scan, path: str) -> BaseImage:
    try:
        first = _check_astro(scan)
        version_span = _version_span(first)
    except Refusal as refusal:
        raise DockerfileError(f"{path}:{refusal.line + 1}: {refusal.message}") from None
    assert first.image.version is not None
    return BaseImage(
        line=first.line + 1,
        edit_line=version_span[0] + 1,
        image=first.image,
        version=first.image.version,
        arg=version_span[3],
        scan=scan,
    )


def _check_astro(scan: Scan) -> AstroFrom:
    """The Astro base the built image runs on, if every Astro stage is safe to retarget."""
    first = scan.astro[0]
    for other in scan.astro[1:]:
        if other.identity != first.identity:
            raise Refusal(
                other.line,
                f"this FROM uses {other.image}{via(other.word)}, but line {first.line + 1} "
                f"uses {first.image}{via(first.word)}: two different Astronomer base images "
                "in one Dockerfile. The tool upgrades one Runtime version per Dockerfile; make "
                "every Astro stage use the same Runtime (an ap-airflow stage needs a manual "
                "migration), then run again.",
            )
    for stage in scan.astro:
        image, where = stage.image, via(stage.word)
        if image.digest is not None:
            raise Refusal(
                stage.line,
                f"{image}{where} is pinned by digest. The digest, not the tag, decides what "
                "Docker builds, and this tool cannot look up the digest of the new version. "
                "Remove the '@sha256:...' part (keep the tag) or upgrade this file by hand.",
            )
        if image.kind == "runtime-dev" or (
            image.version is not None and image.version.is_prerelease
        ):
            raise Refusal(
                stage.line,
                f"{image}{where} is a pre-release Runtime (alpha, nightly or dev build). This "
                "tool only moves between released versions; pin a released Runtime by hand "
                "(quay.io/astronomer/astro-runtime:X.Y.Z or "
                "astrocrpublic.azurecr.io/runtime:A.B-N), then run again.",
            )
        try:
            require_pinned_runtime(image)
        except VersionError as exc:
            raise Refusal(stage.line, f"{_with_via(str(exc), image, where)}") from None
        _version_span(stage)
    # What astro deploy ships is the last stage; report the Astro FROM it is rooted in.
    return scan.final or first


def _with_via(message: str, image: ImageRef, where: str) -> str:
    text = str(image)
    return message.replace(text, text + where, 1) if where else message


def _version_span(stage: AstroFrom) -> tuple[int, int, int, str | None]:
    """Where the version characters were written: (line, col_start, col_end, arg)."""
    image = stage.image
    assert image.version is not None and image.tag is not None
    core = image.version.raw
    start = len(image.repository) + 1
    if not image.tag.startswith(core):  # parse_image guarantees it; a guard, not a branch
        raise Refusal(stage.line, f"cannot find the version in tag '{image.tag}'.")
    location = stage.word.span_location(start, start + len(core))
    if location is None:
        raise Refusal(
            stage.line,
            f"the version {core} of {image}{via(stage.word)} is assembled from several "
            "places (ARGs, quotes or escapes), so it cannot be changed in one spot. Write the "
            "whole version in one ARG default or in the FROM line, then run again.",
        )
    return location


def _edits(scan: Scan, version: RuntimeVersion) -> dict[tuple[int, int, int], str]:
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
                    raise Refusal(
                        edit_line,
                        f"the characters this retarget would change are also used by the "
                        f"non-Astro FROM on line {line + 1} ({word.text}), which would change "
                        "too. Give that stage its own ARG, then run again.",
                    )
    return edits


def _repository_span(stage: AstroFrom, target: ImageRef) -> tuple[int, int, int]:
    image = stage.image
    host = image.repository.split("/", 1)[0]
    if host.lower() not in _PUBLIC_HOSTS:
        raise Refusal(
            stage.line,
            f"{image} comes from the mirror '{host}', and moving to {target.tag} means moving "
            f"to the Airflow 3 repository {target.repository}, whose path on your mirror this "
            "tool cannot know. Change the FROM to your mirror's Airflow 3 Runtime by hand.",
        )
    location = stage.word.span_location(0, len(image.repository))
    if location is None:
        raise Refusal(
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
            raise Refusal(
                from_line,
                "two Astro stages need conflicting changes to the same characters. Make the "
                "stages use the same image, then run again.",
            )
    edits[key] = new


def _check_result(result: str, before: Scan, version: RuntimeVersion, path: str) -> None:
    """Defence in depth: the rewritten file must read back as the intended images."""
    after = _scan_or_raise(result, path)
    expected = [str(stage.image.retarget(version)) for stage in before.astro]
    actual = [str(stage.image) for stage in after.astro]
    if actual != expected:
        raise DockerfileError(
            f"{path}:{before.astro[0].line + 1}: the rewrite would build {actual} instead of "
            f"{expected}; nothing was changed. Please report this Dockerfile shape."
        )
