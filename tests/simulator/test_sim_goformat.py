"""Go-compatible formatting and flag parsing used by astro-sim."""

from datetime import UTC, datetime

import pytest
import yaml

from fleet_sim.astro_cli.flags import Flag, FlagError, parse
from fleet_sim.astro_cli.goformat import GoTime, go_json, go_value, go_yaml, parse_go_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m0s", 300.0),
        ("90s", 90.0),
        ("1h2m", 3720.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("0", 0.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"), [("5", "missing unit"), ("5x", "unknown unit"), ("", "invalid")]
)
def test_bad_go_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_go_duration(text)


def test_yaml_quotes_what_yaml_v3_quotes_and_round_trips() -> None:
    stamp = GoTime(datetime(2023, 6, 27, 13, 28, 48, 699000, tzinfo=UTC))
    doc = {
        "a": {
            "cpu": "0.25",
            "count": "10",
            "empty": "",
            "flag": "true",
            "version": "12.4.0",
            "af3": "3.0-7",
            "url": "host:1/d/x?orgId=o",
            "when": stamp,
            "list": [{"k": 1, "j": "x"}],
        }
    }
    text = go_yaml(doc)
    assert '    cpu: "0.25"\n' in text and '    count: "10"\n' in text and '    empty: ""\n' in text
    assert "    version: 12.4.0\n" in text and "    when: 2023-06-27T13:28:48.699Z\n" in text
    assert "    list:\n        - k: 1\n          j: x\n" in text
    loaded = yaml.safe_load(text)["a"]
    assert (
        loaded["cpu"] == "0.25"
        and loaded["flag"] == "true"
        and loaded["url"] == "host:1/d/x?orgId=o"
    )


def test_go_values_and_json() -> None:
    stamp = GoTime(datetime(2023, 6, 27, 13, 28, 48, 699000, tzinfo=UTC))
    assert go_value(stamp) == "2023-06-27 13:28:48.699 +0000 UTC"
    assert go_value({"b": True, "a": [1, "x"]}) == "map[a:[1 x] b:true]"
    assert go_json({"u": "a<b&c"}, 4) == '{\n    "u": "a\\u003cb\\u0026c"\n}'


def test_flags_parse_like_pflag() -> None:
    flags = [
        Flag("output", "o"),
        Flag("force", "f", "bool", False),
        Flag("wait", "w", "bool", False),
    ]
    parsed = parse(["-ojson", "-fw", "--wait=false", "id-1"], flags)
    assert parsed.values["output"] == "json" and parsed.values["force"] is True
    assert parsed.values["wait"] is False and parsed.args == ["id-1"]
    assert parse(["-o=yaml"], flags).values["output"] == "yaml"
    with pytest.raises(FlagError, match="flag needs an argument: 'o' in -o"):
        parse(["-o"], flags)
    with pytest.raises(FlagError, match='invalid argument "maybe" for "--wait" flag'):
        parse(["--wait=maybe"], flags)
