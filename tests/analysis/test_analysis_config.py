"""The ``analysis`` check's settings: layered like every verify setting, taken out of the
post-deploy checks, validated at load, turned into thresholds."""

from __future__ import annotations

import pytest

from upgrade.config.verify import VerifyLayer, key_path, merge_verify_config, read_verify_layer
from upgrade.errors import InventoryError, PlaybookError, Problem
from upgrade.model.analysis import AnalysisSettings
from upgrade.run.verify.analysis import max_pages, settings_for


def verify_layer(data: object, label: str = "vars.verify") -> VerifyLayer:
    """One level's settings read by the loader's own validator, in-process (InventoryError
    with every problem, as ``load_inventory`` raises it)."""
    problems: list[Problem] = []

    def locate(keys: tuple[object, ...], message: str) -> None:
        problems.append(Problem("inventory.yaml", None, key_path((label, *keys)), message))

    layer = read_verify_layer(data, label, locate)
    if layer is None:
        raise InventoryError(problems)
    return layer


def test_the_wave_asks_for_it_and_it_leaves_the_post_deploy_checks() -> None:
    wave = verify_layer({"checks": [{"name": "analysis", "interval": "2m", "count": 3}]},
                        "waves.1.verify")
    config = merge_verify_config(None, wave, None)
    assert config.names() == ["version", "healthy"]
    assert config.analysis is not None and config.analysis.origin == "waves.1.verify"
    assert settings_for(config.analysis, config) == AnalysisSettings(interval=120.0, count=3)
    assert max_pages(config.analysis) == 10


def test_a_deployment_patches_or_removes_its_waves_analysis() -> None:
    wave = verify_layer({"inconclusive": "pass",
                         "checks": [{"name": "analysis", "failure_limit": 1}]})
    patched = merge_verify_config(None, wave, verify_layer(
        {"checks": [{"name": "analysis", "min_runs": 10, "inconclusive": "fail"}]}))
    assert patched.analysis is not None
    got = settings_for(patched.analysis, patched)
    assert (got.failure_limit, got.min_runs, got.inconclusive) == (1, 10, "fail")
    # Without its own, inconclusive follows the verification's.
    plain = merge_verify_config(None, wave, None)
    assert plain.analysis is not None
    assert settings_for(plain.analysis, plain).inconclusive == "pass"
    off = merge_verify_config(None, wave, verify_layer(
        {"checks": [{"name": "analysis", "enabled": False}]}))
    assert off.analysis is None


def test_the_playbook_can_ask_for_it_too() -> None:
    config = merge_verify_config({"checks": ["version", "healthy", "analysis"]}, None, None)
    assert config.analysis is not None and config.names() == ["version", "healthy"]


@pytest.mark.parametrize(("setting", "words"), [
    ({"count": 0}, "count"),
    ({"max_failure_rate_increase": 2}, "max_failure_rate_increase"),
    ({"duration_factor": 0.5}, "duration_factor"),
    ({"inconclusive": "maybe"}, "one of fail, pass"),
    ({"interval": "soon"}, "interval"),
    ({"failure_limt": 1}, "did you mean 'failure_limit'"),
    ({"max_pages": 1000}, "max_pages"),
])
def test_bad_settings_are_refused_with_their_key(setting: dict, words: str) -> None:
    with pytest.raises(InventoryError) as err:
        verify_layer({"checks": [{"name": "analysis", **setting}]}, "waves.2.verify")
    text = str(err.value)
    assert "waves.2.verify.checks[0]" in text
    assert words.lower() in text.lower()


def test_a_playbook_with_a_bad_analysis_is_refused() -> None:
    with pytest.raises(PlaybookError):
        merge_verify_config({"checks": [{"name": "analysis", "count": -1}]}, None, None)
