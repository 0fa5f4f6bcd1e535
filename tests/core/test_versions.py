"""The Runtime version order: the traps from the reference, and total-order properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upgrade.errors import VersionError
from upgrade.model.image import parse_image
from upgrade.model.versions import RuntimeVersion, parse_spec, parse_version

# (a, b, expected sign of a compared with b): the two schemes, their traps (3.0.4 vs 3.0-4)
# (astro-cli CompareRuntimeVersions worked results) and the catalog's real lines.
TRAPS = [
    ("3.0-1", "13.1.0", 1),  # every Airflow 3 build beats every Airflow 2 build
    ("3.0-1", "3.0.4", 1),  # 3.0-1 (Airflow 3.0) is not 3.0.4 (Airflow 2.1, 2021)
    ("3.0-1", "3.0.0", 1),
    ("3.0-1", "13.9.0", 1),
    ("3.0-1", "2.1.1", 1),
    ("3.1-12", "3.1.12", 1),  # same digits, other scheme
    ("3.1-10", "3.1-9", 1),  # numeric build counter, not lexical
    ("3.1-100", "3.1-99", 1),
    ("3.2-1", "3.1-20", 1),  # Airflow minor first
    ("3.3-1", "3.2-6", 1),
    ("3.1-1", "3.0-14", 1),
    ("3.0-14", "3.0-9", 1),
    ("3.10-1", "3.9-99", 1),
    ("12.10.0", "12.9.0", 1),  # numeric, not lexical
    ("11.10.0", "11.9.0", 1),
    ("9.10.2", "9.10.1", 1),
    ("9.11.0", "9.10.2", 1),
    ("10.0.0", "9.17.0", 1),
    ("10.10.0", "10.9.0", 1),
    ("4.2.10", "4.2.9", 1),
    ("5.0.13", "5.0.9", 1),
    ("6.10.0", "6.9.2", 1),
    ("6.9.2", "6.9.1", 1),
    ("12.7.1", "12.7.0", 1),
    ("12.0.0", "11.18.0", 1),
    ("13.0.0", "12.12.0", 1),
    ("13.9.0", "13.8.0", 1),
    ("3.0.4", "3.0.3", 1),
    ("4.0.0", "3.0.4", 1),
    ("3.0.0", "2.1.1", 1),
    ("3.1.12", "12.0.0", -1),  # an old-scheme 3.x is ancient
    ("3.0-1-nightly20241216", "3.0-1", -1),  # a nightly ranks below its release
    ("3.1-1-nightly20250101", "3.0-14", 1),  # ... but above the previous minor
    ("8.2.0-alpha4", "8.2.0", -1),
    ("8.2.0-alpha4", "8.1.0", 1),
    ("8.2.0-beta1", "8.2.0-alpha4", 1),
    ("8.2.0-rc1", "8.2.0-beta1", 1),
    ("8.2.0-nightly20240101", "8.2.0-alpha1", -1),
    ("8.2.0-alpha10", "8.2.0-alpha9", 1),
    ("12.4.0", "v12.4.0", 0),  # one leading v is tolerated, as astro-cli does
    ("3.1-12", "v3.1-12", 0),
    ("12.4.0", "12.4.0", 0),
    ("13.7.0", "12.0.0", 1),
    ("3.0-1", "13.7.0", 1),
]


@pytest.mark.parametrize(("a", "b", "sign"), TRAPS, ids=[f"{a}~{b}" for a, b, _ in TRAPS])
def test_trap_table(a: str, b: str, sign: int) -> None:
    x, y = parse_version(a), parse_version(b)
    assert ((x > y) - (x < y)) == sign
    assert ((y > x) - (y < x)) == -sign
    assert (x == y) == (sign == 0)


@pytest.mark.parametrize(
    ("tag", "bare"),
    [
        ("astrocrpublic.azurecr.io/runtime:3.1-12-python-3.12", "3.1-12"),
        ("astrocrpublic.azurecr.io/runtime:3.1-12-base", "3.1-12"),
        ("quay.io/astronomer/astro-runtime:12.4.0-base", "12.4.0"),
        ("quay.io/astronomer/astro-runtime:12.4.0-slim", "12.4.0"),
        ("quay.io/astronomer/astro-runtime:11.0.0-python-3.11-slim-base", "11.0.0"),
        ("quay.io/astronomer/astro-runtime:11.12.0-ubi9-python-3.11-slim", "11.12.0"),
        ("quay.io/astronomer/astro-runtime:13.7.0-slim-python-3.12", "13.7.0"),
    ],
)
def test_variant_suffixes_are_not_part_of_the_version(tag: str, bare: str) -> None:
    # astro-cli compares "3.1-12-base" below "3.1-12" (suffix read as a pre-release); we must not.
    assert parse_image(tag).version == parse_version(bare)


@pytest.mark.parametrize(
    "text",
    ["3.01-1", "12.04.0", "latest", "12.4", "", "v", "3.1-", "-1", "12.4.0.1", "12.4.0-foo", "abc"],
)
def test_invalid_exact_versions_name_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(VersionError) as err:
        parse_version(text, source="inventory.yaml:3: target")
    assert f"'{text}'" in str(err.value)
    assert "X.Y.Z" in str(err.value) and "A.B-N" in str(err.value)
    assert str(err.value).startswith("inventory.yaml:3: target: ")


def test_floating_specs_are_lines_not_versions() -> None:
    # astro-cli reads "12.4" as 12.4.0 and "3.1" as old Runtime 3.1.0; both are traps.
    assert parse_spec("12.4").kind == "line" and parse_spec("12.4").prefix == (12, 4)
    assert parse_spec("12.4").scheme == "af2"
    assert parse_spec("3.1").scheme == "af3"
    assert parse_spec("3").scheme == "af3"
    assert parse_spec("12.4.x").prefix == (12, 4)
    assert parse_spec("12.x").prefix == (12,)
    assert parse_spec("LATEST").kind == "latest"
    assert parse_spec("3.1-12").exact == parse_version("3.1-12")
    assert parse_spec("3.1").matches(parse_version("3.1-12"))
    assert not parse_spec("3.1").matches(parse_version("3.1.0"))
    assert not parse_spec("12.4").matches(parse_version("12.40.0"))
    with pytest.raises(VersionError, match="'12.4.0.0' is not a valid Runtime version spec"):
        parse_spec("12.4.0.0")


def test_airflow_major() -> None:
    assert parse_version("3.0.4").airflow_major == 2
    assert parse_version("3.0-4").airflow_major == 3
    assert parse_version("13.7.0").airflow_major == 2


# ------------------------------------------------------------------ total-order properties

_n = st.integers(min_value=0, max_value=30)
_pre = st.one_of(
    st.none(),
    st.builds(lambda w, n: f"{w}{n}", st.sampled_from(["alpha", "beta", "rc", "nightly"]), _n),
)
af2 = st.builds(lambda a, b, c, p: f"{a}.{b}.{c}" + (f"-{p}" if p else ""), _n, _n, _n, _pre)
af3 = st.builds(
    lambda a, b, c, p: f"{a}.{b}-{c}" + (f"-{p}" if p else ""), st.integers(3, 4), _n, _n, _pre
)
versions = st.one_of(af2, af3).map(parse_version)


@given(versions, versions)
def test_exactly_one_relation_holds(a: RuntimeVersion, b: RuntimeVersion) -> None:
    assert [a < b, a == b, a > b].count(True) == 1


@given(versions, versions)
def test_antisymmetry_and_equality_consistency(a: RuntimeVersion, b: RuntimeVersion) -> None:
    if a <= b and b <= a:
        assert a == b
        assert hash(a) == hash(b)
        assert str(a) == str(b)
    if a == b:
        assert not a < b and not b < a


@given(versions, versions, versions)
def test_transitivity(a: RuntimeVersion, b: RuntimeVersion, c: RuntimeVersion) -> None:
    if a <= b and b <= c:
        assert a <= c
    if a < b and b < c:
        assert a < c


@given(st.lists(versions, min_size=2, max_size=12))
def test_sorting_is_stable_under_any_input_order(items: list[RuntimeVersion]) -> None:
    assert sorted(items) == sorted(reversed(items))
    assert sorted(items) == sorted(sorted(items, reverse=True))


@given(af2.map(parse_version), af3.map(parse_version))
def test_every_airflow3_build_is_newer_than_every_airflow2_build(
    old: RuntimeVersion, new: RuntimeVersion
) -> None:
    assert new > old


@given(versions)
def test_round_trip(v: RuntimeVersion) -> None:
    assert parse_version(str(v)) == v
    assert str(parse_version(str(v))) == str(v)


@given(versions)
def test_a_prerelease_ranks_below_its_release(v: RuntimeVersion) -> None:
    release = RuntimeVersion(v.scheme, v.major, v.minor, v.patch)
    if v.is_prerelease:
        assert v < release
    else:
        assert v == release
