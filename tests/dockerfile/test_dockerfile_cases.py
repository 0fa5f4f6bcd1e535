"""Every case file in cases/: exact output or a located refusal, checked independently."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from upgrade.errors import DockerfileError
from upgrade.model.dockerfile import find_base_image, retarget
from upgrade.model.versions import parse_version

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(CASES_DIR.glob("*.yaml"))
# A refusal must tell the user what to do, not only what is wrong.
ADVICE = ("then run again", "by hand", "manual migration", "pick a target", "check that this")


def _text(case: dict, key: str) -> str:
    if f"{key}_file" in case:
        return (CASES_DIR / case[f"{key}_file"]).read_bytes().decode("utf-8")
    return case[key]


def _show(label: str, text: str) -> str:
    return f"--- {label} ---\n{text!r}\n" + "".join(f"  | {line}\n" for line in text.split("\n"))


def test_there_are_enough_cases():
    assert len(CASES) >= 45


@pytest.mark.parametrize("case_path", CASES, ids=lambda p: p.stem)
def test_case(case_path: Path, built_images):
    case = yaml.safe_load(case_path.read_text(encoding="utf-8"))
    assert set(case) <= {
        "name", "input", "input_file", "target", "expected", "expected_file", "image",
        "other_images", "final_image", "base", "refusal", "independent_check", "why",
    }, f"unknown keys in {case_path.name}"
    text = _text(case, "input")
    target = parse_version(str(case["target"]))
    if "refusal" in case:
        _check_refusal(case, text, target)
        return
    if "base" in case:
        base = find_base_image(text, path="Dockerfile")
        got = {"line": base.line, "edit_line": base.edit_line, "arg": base.arg,
               "version": str(base.version), "image": str(base.image)}
        assert {k: got[k] for k in case["base"]} == case["base"]
    expected = _text(case, "expected")
    actual = retarget(text, target, path="Dockerfile")
    assert actual == expected, "\n" + _show("expected", expected) + _show("actual", actual)
    after = find_base_image(actual, path="Dockerfile")
    assert after.version == target
    assert str(after.image) == case["image"]
    if case.get("independent_check", True):
        external, final = built_images(actual)
        assert external == {case["image"], *case.get("other_images", [])}
        assert final == case.get("final_image", case["image"])


def _check_refusal(case: dict, text: str, target) -> None:
    refusal = case["refusal"]
    with pytest.raises(DockerfileError) as info:
        if refusal.get("by") == "retarget":
            find_base_image(text, path="Dockerfile")
            retarget(text, target, path="Dockerfile")
        else:
            find_base_image(text, path="Dockerfile")
    message = str(info.value)
    assert message.startswith(f"Dockerfile:{refusal['line']}: "), message
    assert refusal["message"] in message, message
    assert any(advice in message for advice in ADVICE), f"no advice in: {message}"
    assert "Traceback" not in message
