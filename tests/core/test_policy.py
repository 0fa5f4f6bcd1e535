"""The monotonic policy: every rule alone, then the order in which they apply."""

from __future__ import annotations

from datetime import date

import pytest

from tests.core import decisions
from tests.core.decisions import CASE_IDS, CASES, Case
from upgrade.model.catalog import Catalog, Release, load_snapshot
from upgrade.model.versions import parse_version as v
from upgrade.plan.policy import Facts, PolicyOptions, decide

TODAY = date(2026, 11, 25)


def rel(version: str, **kw: object) -> Release:
    return Release(version=v(version), **kw)  # type: ignore[arg-type]


CATALOG = Catalog(
    (
        rel("11.8.0", end_of_maintenance=date(2025, 10, 31), channel="deprecated"),
        rel("12.3.0"),
        rel("12.4.0"),
        rel("12.4.1", end_of_maintenance=date(2027, 6, 30)),
        rel("12.4.2", yanked=True, yanked_reason="Broken scheduler."),
        rel("13.6.0"),
        rel("13.7.0"),
        rel("13.9.0"),
        rel("3.1-11"),
        rel("3.1-12"),
        rel("3.2-5"),
    )
)
OPTS = PolicyOptions(today=TODAY)


def d(facts: Facts, target: str, **opts: object):
    return decide(facts, v(target), CATALOG, PolicyOptions(today=TODAY, **opts))  # type: ignore[arg-type]


def test_plain_upgrade() -> None:
    out = d(Facts(deployed=v("12.3.0"), dockerfile=v("12.3.0")), "12.4.1")
    assert out.action == "upgrade"
    assert out.reason == "Upgrade 12.3.0 → 12.4.1."
    assert out.warnings == ()


def test_equal_is_noop() -> None:
    out = d(Facts(deployed=v("12.4.1"), dockerfile=v("12.4.1"), high_water=v("12.4.1")), "12.4.1")
    assert (out.action, out.reason) == ("noop", "Already at 12.4.1.")


def test_noop_from_dockerfile_alone() -> None:
    assert d(Facts(dockerfile=v("12.4.1")), "12.4.1").action == "noop"


def test_downgrade_below_deployed_uses_astros_wording() -> None:
    out = d(Facts(deployed=v("13.6.0"), dockerfile=v("12.3.0")), "12.4.1")
    assert out.action == "refuse"
    assert out.reason.startswith(
        "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version "
        "to 13.6.0 or higher in your Dockerfile"
    )
    assert "deployed version is 13.6.0" in out.reason


def test_downgrade_below_high_water_mark() -> None:
    # Astro says 12.3.0 (perhaps rolled back), but we once deployed 12.4.1: never go below.
    out = d(Facts(deployed=v("12.3.0"), dockerfile=v("12.3.0"), high_water=v("12.4.1")), "12.4.0")
    assert out.action == "refuse"
    assert "highest recorded version is 12.4.1" in out.reason


def test_airflow3_to_airflow2_is_a_different_line_not_a_downgrade() -> None:
    out = d(Facts(deployed=v("3.1-12")), "13.9.0")
    assert out.action == "refuse" and "different line" in out.reason
    assert "downgrade" not in out.reason


def test_dockerfile_newer_than_target_is_refused() -> None:
    out = d(Facts(deployed=v("12.3.0"), dockerfile=v("13.6.0")), "12.4.1")
    assert out.action == "refuse"
    assert "Dockerfile already holds 13.6.0, newer than the target 12.4.1" in out.reason
    assert out.warnings  # and the disagreement is reported too


def test_unknown_target() -> None:
    out = d(Facts(deployed=v("12.3.0")), "12.4.9")
    assert out.action == "refuse" and "12.4.9 is not a known Astro Runtime release" in out.reason


def test_yanked_target() -> None:
    out = d(Facts(deployed=v("12.3.0")), "12.4.2")
    assert out.action == "refuse" and out.reason == (
        "Target 12.4.2 is yanked by Astronomer (Broken scheduler); choose another version."
    )


def test_end_of_maintenance_refused_unless_allowed() -> None:
    facts = Facts(deployed=v("11.7.0"))
    assert d(facts, "11.8.0").action == "refuse"
    assert "end of maintenance on 2025-10-31" in d(facts, "11.8.0").reason
    assert d(facts, "11.8.0", allow_end_of_maintenance=True).action == "upgrade"


def test_airflow3_needs_explicit_opt_in() -> None:
    out = d(Facts(deployed=v("13.9.0")), "3.1-12")
    assert out.action == "refuse" and "allow_airflow3: true" in out.reason


def test_airflow3_needs_13_7_0_or_later() -> None:
    out = d(Facts(deployed=v("13.6.0")), "3.1-12", allow_airflow3=True)
    assert out.action == "refuse" and "needs Runtime 13.7.0 or later" in out.reason
    assert d(Facts(deployed=v("13.7.0")), "3.1-12", allow_airflow3=True).action == "migrate"


def test_airflow3_target_must_be_newest_patch_of_its_minor() -> None:
    out = d(Facts(deployed=v("13.9.0")), "3.1-11", allow_airflow3=True)
    assert out.action == "refuse"
    assert "latest patch of each minor (3.1-12)" in out.reason


def test_airflow3_target_already_used_in_the_org_is_allowed() -> None:
    out = d(
        Facts(deployed=v("13.9.0")),
        "3.1-11",
        allow_airflow3=True,
        org_versions=frozenset({v("3.1-11")}),
    )
    assert out.action == "migrate"


def test_within_airflow3_no_crossing_rules_apply() -> None:
    assert d(Facts(deployed=v("3.1-11")), "3.2-5").action == "upgrade"


def test_disagreement_is_a_warning_not_a_refusal() -> None:
    out = d(Facts(deployed=v("12.4.0"), dockerfile=v("12.3.0")), "12.4.1")
    assert out.action == "upgrade"
    assert "Dockerfile holds 12.3.0 but Astro reports 12.4.0 deployed" in out.warnings[0]


def test_a_dockerfile_already_at_the_target_ahead_of_astro_is_a_rollout_in_flight() -> None:
    # A shared repo changed by an earlier wave (or a merge waiting for its deploy): the
    # tool's own work, not a deploy by hand.
    out = d(Facts(deployed=v("12.1.0"), dockerfile=v("12.4.1")), "12.4.1")
    assert out.action == "upgrade" and out.warnings == ()
    # Ahead of Astro but not at this target: still a disagreement worth a warning.
    assert d(Facts(deployed=v("12.1.0"), dockerfile=v("12.3.0")), "12.4.1").warnings


def test_deployed_at_target_but_dockerfile_behind_is_an_upgrade_of_the_file() -> None:
    out = d(Facts(deployed=v("12.4.1"), dockerfile=v("12.4.0")), "12.4.1")
    assert out.action == "upgrade" and "rewrite it to match" in out.reason


def test_nothing_known_pins_the_target() -> None:
    assert d(Facts(), "12.4.1").action == "upgrade"


@pytest.mark.parametrize("target", [str(r.version) for r in load_snapshot() if not r.yanked][:60])
def test_never_a_downgrade_across_the_real_catalog(target: str) -> None:
    # Invariant 1, over real versions: whatever the target, nothing below the floor passes.
    catalog = load_snapshot()
    for floor in catalog:
        out = decide(
            Facts(deployed=floor.version),
            v(target),
            catalog,
            PolicyOptions(today=TODAY, allow_airflow3=True, allow_end_of_maintenance=True),
        )
        if v(target) < floor.version:
            assert out.action == "refuse"
        elif v(target) == floor.version:
            assert out.action == "noop"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_decision_corpus(case: Case) -> None:
    # Each case as the policy alone decides it; tests/rollout/test_one_decision.py runs the
    # same cases through plan, upgrade --dry-run and upgrade.
    facts = Facts(deployed=case.deployed and v(case.deployed),
                  dockerfile=case.dockerfile and v(case.dockerfile),
                  high_water=case.high_water and v(case.high_water))
    out = decide(facts, v(case.target), decisions.catalog(), PolicyOptions(
        today=TODAY, allow_airflow3=case.allow_airflow3,
        allow_end_of_maintenance=case.allow_end_of_maintenance,
        org_versions=frozenset(v(o) for o in case.org)))
    assert out.action == case.action, out.reason
    assert case.reason in out.reason
    assert bool(out.warnings) == case.warns, out.warnings
