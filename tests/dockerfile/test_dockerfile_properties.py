"""Properties of retarget over generated FROM lines: only the version changes, nothing else."""

from __future__ import annotations

import io

from dockerfile_parse import DockerfileParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upgrade.model.dockerfile import find_base_image, retarget
from upgrade.model.versions import RuntimeVersion

AF2_REPOS = ("quay.io/astronomer/astro-runtime", "astrocrpublic.azurecr.io/astronomer/astro-runtime")
AF3_REPO = "astrocrpublic.azurecr.io/runtime"
VARIANTS = ("base", "slim", "python-3.12", "ubi9")

af2 = st.builds(
    lambda a, b, c: RuntimeVersion("af2", a, b, c),
    st.integers(4, 13), st.integers(0, 20), st.integers(0, 3),
)
af3 = st.builds(
    lambda a, b, c: RuntimeVersion("af3", 3, a, b), st.integers(0, 3), st.integers(1, 20), st.just(0)
)
versions = st.one_of(af2, af3)
pairs = st.tuples(versions, versions).filter(lambda p: p[0] != p[1]).map(sorted)


@st.composite
def dockerfiles(draw):
    """A Dockerfile with one generated Astro FROM line, plus how it was built."""
    current, target = draw(pairs)
    repo = draw(st.sampled_from(AF2_REPOS)) if current.scheme == "af2" else AF3_REPO
    variants = draw(st.permutations(VARIANTS))[: draw(st.integers(0, 4))]
    suffix = "".join(f"-{v}" for v in variants)
    keyword = draw(st.sampled_from(["FROM", "from", "From"]))
    gap = draw(st.sampled_from([" ", "  ", "\t"]))
    platform = draw(st.sampled_from(["", "--platform=linux/amd64 ", "--platform=$BUILDPLATFORM "]))
    alias = draw(st.sampled_from(["", " AS runtime", " as build", " As Stage1"]))
    trailing = draw(st.sampled_from(["", " ", "\t "]))
    indent = draw(st.sampled_from(["", "  "]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    final_newline = draw(st.booleans())
    before = draw(st.lists(st.sampled_from([
        "# syntax=quay.io/astronomer/airflow-extensions:v1",
        f"# FROM {repo}:{current}{suffix}",
        "# Astro Runtime includes these providers: https://example.invalid/p",
        "",
    ]), max_size=3))
    after = draw(st.lists(st.sampled_from([
        "USER root", "RUN apt-get update && apt-get install -y git", "USER astro",
        f"# was {repo}:{current}", "ENV AIRFLOW__CORE__TEST_CONNECTION=Enabled", "",
    ]), max_size=4))
    head = f"{indent}{keyword}{gap}{platform}"
    tail = f"{alias}{trailing}"
    lines = [*before, f"{head}{repo}:{current}{suffix}{tail}", *after]
    text = eol.join(lines) + (eol if final_newline else "")
    new_repo = repo if target.scheme == current.scheme else AF3_REPO
    return {
        "text": text, "target": target, "index": len(before), "eol": eol,
        "new_line": f"{head}{new_repo}:{target}{suffix}{tail}",
        "image": f"{new_repo}:{target}{suffix}",
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles())
def test_retarget_changes_only_the_from_line(case):
    text, target = case["text"], case["target"]
    result = retarget(text, target, path="Dockerfile")
    assert find_base_image(result, path="Dockerfile").version == target
    assert str(find_base_image(result, path="Dockerfile").image) == case["image"]
    old, new = text.split("\n"), result.split("\n")
    assert len(old) == len(new)
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert changed == [case["index"]]
    cr = "\r" if case["eol"] == "\r\n" and case["index"] < len(old) - 1 else ""
    assert new[case["index"]] == case["new_line"] + cr
    assert result.endswith(case["eol"]) == text.endswith(case["eol"])
    if "$BUILDPLATFORM" not in text:
        parser = DockerfileParser(fileobj=io.BytesIO(result.encode()))
        assert parser.baseimage == case["image"]


@settings(max_examples=150, deadline=None)
@given(
    pairs,
    st.sampled_from(["version", "image"]),
    st.sampled_from(['"', "'", ""]),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from(["", "-base", "-python-3.12-slim"]),
)
def test_retarget_through_arg_changes_only_the_arg_default(pair, form, quote, eol, suffix):
    current, target = pair
    repo = AF2_REPOS[0] if current.scheme == "af2" else AF3_REPO
    new_repo = repo if target.scheme == current.scheme else AF3_REPO
    if form == "version":
        lines = [f"ARG V={quote}{current}{quote}", f"FROM {repo}:${{V}}{suffix} AS x", "USER astro"]
        want = [f"ARG V={quote}{target}{quote}", f"FROM {new_repo}:${{V}}{suffix} AS x"]
    else:
        lines = [f"ARG IMG={quote}{repo}:{current}{suffix}{quote}", "FROM ${IMG}", "USER astro"]
        want = [f"ARG IMG={quote}{new_repo}:{target}{suffix}{quote}", "FROM ${IMG}"]
    text = eol.join(lines)
    result = retarget(text, target, path="Dockerfile")
    assert result == eol.join([*want, "USER astro"])
    base = find_base_image(result, path="Dockerfile")
    assert (base.version, base.edit_line, base.line) == (target, 1, 2)
    assert DockerfileParser(fileobj=io.BytesIO(result.encode())).baseimage == (
        f"{new_repo}:{target}{suffix}"
    )
