"""The port of astro-cli's CompareRuntimeVersions against the worked results
in astro-cli's CompareRuntimeVersions, plus the Airflow-major helper."""

import pytest

from fleet_sim.runtime_versions import airflow_major, compare_runtime_versions, is_airflow3

WORKED = [
    ("3.0-1", "13.1.0", 1),
    ("3.0-1", "3.0.4", 1),
    ("3.1-10", "3.1-9", 1),
    ("3.2-1", "3.1-20", 1),
    ("12.10.0", "12.9.0", 1),
    ("12.4", "12.4.0", 0),
    ("12.4", "12.4.1", -1),
    ("3.1", "12.0.0", -1),
    ("3.1", "3.0-7", -1),
    ("3.1-12-python-3.12", "3.1-12", -1),
    ("3.1-12-base", "3.1-12", -1),
    ("12.4.0-base", "12.4.0", -1),
    ("12.4.0-slim", "12.4.0", -1),
    ("3.0-1-nightly20241216", "3.0-1", -1),
    ("3.01-1", "3.0-1", -1),
    ("latest", "2.1.1", -1),
    ("v12.4.0", "12.4.0", 0),
    ("garbage", "latest", 0),
]


@pytest.mark.parametrize(("v1", "v2", "expected"), WORKED)
def test_compare_matches_astro_cli(v1: str, v2: str, expected: int) -> None:
    assert compare_runtime_versions(v1, v2) == expected
    assert compare_runtime_versions(v2, v1) == -expected


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("3.0.4", "2"),
        ("3.0-4", "3"),
        ("12.4.0", "2"),
        ("v3.1-1", ""),
        ("latest", ""),
        ("3.1-12", "3"),
    ],
)
def test_airflow_major_follows_the_tag_grammar(version: str, major: str) -> None:
    assert airflow_major(version) == major
    assert is_airflow3(version) == (major == "3")
