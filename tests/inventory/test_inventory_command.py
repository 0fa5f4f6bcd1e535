"""`invoke inventory`: the fleet by wave, and one Deployment's merged variables."""

from __future__ import annotations

import json

from support import SampleFleet


def test_merged_view_names_the_layer_of_each_variable(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("inventory", "--name", "marketing-dbt-prod", "--json")
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert (view["wave"], view["wave_source"], view["repo"]) == (3, "waves.3.match", "marketing-dbt")
    # defaults -> groups (analytics before its child marketing) -> repo -> Deployment
    assert view["vars"]["owner"] == "data-platform" and view["var_sources"]["owner"] == "defaults"
    assert view["vars"]["team"] == "marketing" and view["var_sources"]["team"] == "group marketing"
    assert view["vars"]["change_ticket_required"] is True
    assert view["groups"] == ["analytics", "production", "marketing"]


def test_the_fleet_by_wave(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("inventory")
    assert out.returncode == 0
    assert "24 Deployments, 10 repos" in out.stdout
    lines = [line for line in out.stdout.splitlines() if "-dev " in line]
    assert len(lines) == 9
    assert {ln.split("│")[1].strip() for ln in lines} == {"1", "4"}  # customer-360-dev: wave 4
    assert sum("│ 4 " in line for line in lines) == 1


def test_an_unknown_deployment_gets_a_did_you_mean(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("inventory", "--name", "sales-etl-prd")
    assert out.returncode == 2
    assert "sales-etl-prod" in out.stderr and "Traceback" not in out.stderr


def test_a_url_that_does_not_parse_is_a_located_refusal(sample_fleet: SampleFleet) -> None:
    text = sample_fleet.inventory.read_text("utf-8")
    line = text.splitlines().index("    mode: direct                   # committed on the "
                                   "remote's default branch and pushed") + 1
    sample_fleet.inventory.write_text(text.replace(
        "    mode: direct ", '    forge_url: "http://[::1"\n    mode: direct ', 1), "utf-8")
    for args in (("inventory",), ("plan", "--offline")):
        out = sample_fleet.invoke(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.startswith(
            f"error: inventory.yaml:{line}: defaults.git.forge_url: must be an http(s) "
            "URL with a host, e.g. https://api.github.com; it does not parse as a URL (Invalid "
            "IPv6 URL)."), out.stderr
        assert "unexpected" not in out.stderr
