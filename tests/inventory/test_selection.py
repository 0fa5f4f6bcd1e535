"""The selection grammar shared by --limit and waves.N.match."""

from __future__ import annotations

import pytest

from upgrade.config.inventory import Inventory
from upgrade.config.selection import parse_terms, split
from upgrade.errors import EXIT_INPUT, InputError

from .conftest import FleetDir


def names(inventory: Inventory, *limits: str, wave: int | None = None) -> list[str]:
    return [d.name for d in inventory.select(wave, list(limits))]


ALL = ["billing-dev", "billing-staging", "billing-prod", "search-dev", "search-prod", "etl-prod"]


@pytest.mark.parametrize(("limits", "expected"), [
    ((), ALL),
    (("billing-dev",), ["billing-dev"]),  # a Deployment name
    (("cls0prd",), ["search-prod"]),  # a Deployment id
    (("search",), ["search-dev", "search-prod"]),  # a repo: all its Deployments
    (("prod",), ["billing-prod", "search-prod", "etl-prod"]),  # a group
    (("nonprod",), ["billing-dev", "billing-staging", "search-dev"]),  # via child groups
    (("all",), ALL),
    (("*-prod",), ["billing-prod", "search-prod", "etl-prod"]),  # globs over names
    (("billing-[ds]*",), ["billing-dev", "billing-staging"]),
    (("search-???",), ["search-dev"]),
    (("etl-prod", "billing-dev"), ["billing-dev", "etl-prod"]),  # inventory order, not mine
    (("billing,search",), ["billing-dev", "billing-staging", "billing-prod", "search-dev",
                           "search-prod"]),  # commas
    (("billing:search-dev",), ["billing-dev", "billing-staging", "billing-prod", "search-dev"]),
    (("!prod",), ["billing-dev", "billing-staging", "search-dev"]),  # only exclusions
    (("&prod",), ["billing-prod", "search-prod", "etl-prod"]),  # only intersections
    (("eu:&prod",), ["billing-prod", "etl-prod"]),
    (("billing", "!billing-prod"), ["billing-dev", "billing-staging"]),
    (("!billing-prod", "billing"), ["billing-dev", "billing-staging"]),  # order does not matter
    (("!eu,prod,search-dev",), ["search-dev", "search-prod"]),
    (("billing,search:&prod:!cls0prd",), ["billing-prod"]),  # union, then &, then !
])
def test_grammar(realistic: Inventory, limits: tuple[str, ...], expected: list[str]) -> None:
    assert names(realistic, *limits) == expected


def test_wave_filter_applies_after_the_limit(realistic: Inventory) -> None:
    assert names(realistic, wave=3) == ["billing-prod", "search-prod", "etl-prod"]
    assert names(realistic, "eu", wave=3) == ["billing-prod", "etl-prod"]
    assert names(realistic, "search", wave=1) == ["search-dev"]
    assert names(realistic, "search-prod", wave=1) == []  # named, but not in this wave


def test_an_empty_intersection_selects_nothing(realistic: Inventory) -> None:
    assert names(realistic, "search", "&eu") == []


def test_pattern_matching_nothing_is_an_error(realistic: Inventory) -> None:
    with pytest.raises(InputError) as caught:
        names(realistic, "biling")
    assert str(caught.value) == (
        "--limit 'biling' matches no Deployment, group or repo. Did you mean 'billing'? "
        "Known groups: canary, dev, eu, nonprod, prod, staging; repos: billing, etl, search."
    )
    assert caught.value.exit_code == EXIT_INPUT


def test_excluding_or_intersecting_an_unknown_name_is_an_error(realistic: Inventory) -> None:
    for limit in ("!prdo", "billing,&stagin"):
        with pytest.raises(InputError, match="matches no Deployment, group or repo"):
            names(realistic, limit)


def test_glob_matching_nothing_is_an_error(realistic: Inventory) -> None:
    with pytest.raises(InputError) as caught:
        names(realistic, "*-qa")
    assert str(caught.value) == "--limit '*-qa' matches no Deployment name."


def test_every_bad_pattern_is_reported_at_once(realistic: Inventory) -> None:
    with pytest.raises(InputError) as caught:
        realistic.select(9, ["nope", "~prod.*", "billing"])
    assert str(caught.value).splitlines() == [
        "--limit '~prod.*': regular expressions are not supported. Use a glob such as 'etl-*'.",
        "--limit 'nope' matches no Deployment, group or repo. Known groups: canary, dev, eu, "
        "nonprod, prod, staging; repos: billing, etl, search.",
        "--wave 9: the inventory has no wave 9. Its waves are: 1, 2, 3.",
    ]


@pytest.mark.parametrize(("value", "message"), [
    ("!", "'!' is an empty pattern. Write a name, group, repo or glob, e.g. '!prod-*'."),
    ("&", "'&' is an empty pattern. Write a name, group, repo or glob, e.g. '&prod-*'."),
    ("!!prod", "'!!prod': use one '!' or '&' per pattern, e.g. '!prod-*'."),
    ("&!prod", "'&!prod': use one '!' or '&' per pattern, e.g. '!prod-*'."),
    ("@retry.txt", "'@retry.txt': @file lists are not supported. List the names separated by "
                   "commas."),
    ("prod-[ab", "'prod-[ab': '[' is not closed. Close it ('prod-[ab]') or drop it."),
    (",,", "',,' holds no pattern. Write a name, group, repo or glob."),
])
def test_malformed_patterns(value: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_terms([value])
    assert str(caught.value) == message


def test_split_accepts_commas_colons_and_spaces() -> None:
    assert split(" a, b:!c ,&d:") == ["a", "b", "!c", "&d"]
    terms = parse_terms(["a,!b", "&c"])
    assert [(t.op, t.text) for t in terms] == [("+", "a"), ("!", "b"), ("&", "c")]
    assert [str(t) for t in terms] == ["a", "!b", "&c"]


def test_wave_rules_use_the_same_grammar(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        groups:
          prod: {}
        waves:
          1:
            match: ["app-*,!prod"]
          2:
            match: prod
        repos:
          app:
            path: repos/app
            deployments:
              - {id: d1, name: app-dev, workspace_id: w}
              - {id: d2, name: app-prod, workspace_id: w, groups: [prod]}
        """)
    assert {d.name: d.wave for d in inventory.deployments} == {"app-dev": 1, "app-prod": 2}
    assert inventory.waves[2].match == ("prod",)


def test_did_you_mean_never_offers_the_word_typed() -> None:
    from upgrade.config.checker import did_you_mean

    assert did_you_mean("production", ["production", "productions"]) == " Did you mean 'productions'?"
    assert did_you_mean("production", ["production"]) == ""
