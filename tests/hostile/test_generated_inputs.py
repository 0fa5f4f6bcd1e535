"""Generated hostile inputs through what `plan` runs: never exit 1, never a hang, never
more than 200 MB, and a message with file:line whenever it is about a file.

At least 1,000 mutated inventories and 1,000 mutated Dockerfiles per run (hypothesis,
bounded: about half a minute in all), each run in-process through the inventory loader,
the planner and the plan's rendering (``harness.plan_offline``), plus the corpus of
interesting cases kept in ``corpus/``, replayed both in-process and as the real command.
The counts per exit code are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from tests.hostile.harness import MemoryBaseline, Tally, bounded, check, plan_offline, run_command
from tests.hostile.mutate import dockerfiles, inventories
from upgrade.config.settings import PACKAGED_TEMPLATES
from upgrade.model.catalog import Catalog
from upgrade.model.template import render_template
from upgrade.model.versions import parse_version
from upgrade.plan.planner import runtime_context

EXAMPLES = 1000
CORPUS = Path(__file__).parent / "corpus"
CASES = Path(__file__).parents[1] / "dockerfile" / "cases"

# A fleet that uses most of the schema (no SSH runner: `plan --offline` reads every
# Dockerfile, and a runner host would be a network call, not input handling).
BASE = yaml.safe_load("""
target: {airflow2: "13", airflow3: "3.1"}
control_plane: {api_url: "http://127.0.0.1:18764/v1", astro_bin: astro-sim, wait_timeout: 600}
journal: state/journal
notifications:
  webhook: {url: "https://hooks.example.invalid/services/T0/B0/x", events: [wave_halted]}
runners:
  local: {parallel: 2}
defaults:
  vars: {owner: platform, alert: none}
  runner: local
groups:
  nonprod: {children: [dev], vars: {alert: email}}
  dev: {vars: {tier: dev}}
  prod: {vars: {tier: prod}, wave: 3, target: "13"}
waves:
  1: {match: ["*-dev"], batch: [1, "100%"], soak: 10m}
  2: {batch: [1, "50%"], max_fail_percentage: 25, soak: 1h30m}
  3:
    parallel: 4
    max_failures: 1
    approval: true
    verify: {timeout: 5m, checks: [{name: import_errors, max_new: 0}]}
repos:
  billing:
    path: repos/billing
    vars: {team: payments}
    deployments:
      - {id: clb0dev, name: billing-dev, workspace_id: ws-np, groups: [dev]}
      - {id: clb0stg, name: billing-staging, workspace_id: ws-np, wave: 2}
      - {id: clb0prd, name: billing-prod, workspace_id: ws-prod, groups: [prod],
         vars: {alert: sms, allow_airflow3: false}}
  search:
    path: repos/search
    dockerfile: docker/Dockerfile.astro
    target: "12.4"
    deployments:
      - {id: cls0dev, name: search-dev, workspace_id: ws-np, groups: [dev], wave: 1}
  managed:
    path: repos/managed
    template: {name: standard.Dockerfile.j2, vars: {env: {AIRFLOW__CORE__X: "1"}}}
    deployments:
      - {id: clm0prd, name: managed-prod, workspace_id: ws-prod, groups: [prod]}
""")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for repo, name, version in (("billing", "Dockerfile", "12.4.0"),
                                ("search", "docker/Dockerfile.astro", "12.1.0"),
                                ("managed", "Dockerfile", "12.4.0")):
        path = root / "repos" / repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"FROM quay.io/astronomer/astro-runtime:{version}\n")
    # The template-managed repo holds what its template renders (else: hand-edited).
    managed = BASE["repos"]["managed"]["template"]
    (root / "repos" / "managed" / "Dockerfile").write_text(render_template(
        PACKAGED_TEMPLATES, managed["name"], vars=managed["vars"],
        runtime=runtime_context(parse_version("12.4.0"), catalog)))
    return root


def test_the_base_fleet_plans(fleet: Path, catalog: Catalog) -> None:
    path = fleet / "inventory.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    outcome = plan_offline(path, catalog)
    assert outcome.code == 0, outcome.text
    assert "Plan: 5 to upgrade, 0 already at their target, 0 refused." in outcome.text


HYPOTHESIS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generated_inventories(fleet: Path, catalog: Catalog) -> None:
    path = fleet / "inventory.yaml"
    tally = Tally("mutated inventories")
    baseline = MemoryBaseline()

    @HYPOTHESIS
    @given(inventories(BASE))
    def case(data: bytes) -> None:
        path.write_bytes(data)
        outcome = bounded(lambda: plan_offline(path, catalog), baseline)
        tally.add(outcome)
        check(outcome, f"inventory {data[:300]!r}")
        assert not (fleet / "state").exists()  # nothing written, not even the journal

    case()
    print(tally.report())
    assert tally.total >= EXAMPLES
    assert tally.codes[2] > EXAMPLES // 4 and tally.codes[0] > 0  # both sides were reached


def _case_inputs() -> list[str]:
    texts = []
    for case in sorted(CASES.glob("*.yaml")):
        doc = yaml.safe_load(case.read_text("utf-8"))
        if "input" in doc:
            texts.append(doc["input"])
        elif "input_file" in doc:
            texts.append((CASES / doc["input_file"]).read_bytes().decode("utf-8"))
    return texts


DOCKERFILE_FLEET = """\
target: {airflow2: "13", airflow3: "3.1"}
repos:
  app:
    path: repos/app
    deployments:
      - {id: cla0dev, name: app-dev, workspace_id: ws1, wave: 1}
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generated_dockerfiles(tmp_path: Path, catalog: Catalog) -> None:
    baseline = MemoryBaseline()
    (tmp_path / "repos" / "app").mkdir(parents=True)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(DOCKERFILE_FLEET)
    dockerfile = tmp_path / "repos" / "app" / "Dockerfile"
    tally = Tally("mutated Dockerfiles")

    @HYPOTHESIS
    @given(dockerfiles(_case_inputs()))
    def case(data: bytes) -> None:
        dockerfile.write_bytes(data)
        outcome = bounded(lambda: plan_offline(inventory, catalog), baseline)
        tally.add(outcome)
        check(outcome, f"Dockerfile {data[:300]!r}")
        for reason in outcome.located:
            assert reason.startswith("repos/app/Dockerfile"), reason
        assert dockerfile.read_bytes() == data  # a plan never writes

    case()
    print(tally.report())
    assert tally.total >= EXAMPLES
    assert tally.codes[2] > EXAMPLES // 10 and tally.codes[0] > EXAMPLES // 10


# -- the corpus: interesting cases, kept ------------------------------------------------

def _corpus() -> list[dict]:
    return yaml.safe_load((CORPUS / "cases.yaml").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", _corpus(), ids=lambda c: c["file"])
def test_corpus_case(tmp_path: Path, catalog: Catalog, case: dict) -> None:
    """Each kept case ends as recorded, in-process and (for those marked) as the command."""
    source = CORPUS / case["file"]
    repo = tmp_path / "repos" / "app"
    repo.mkdir(parents=True)
    if case["kind"] == "inventory":
        inventory = tmp_path / "inventory.yaml"
        inventory.write_bytes(source.read_bytes())
        (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    else:
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(DOCKERFILE_FLEET)
        (repo / "Dockerfile").write_bytes(source.read_bytes())
    outcome = bounded(lambda: plan_offline(inventory, catalog), MemoryBaseline())
    check(outcome, case["file"])
    assert outcome.code == case["exit"], outcome.text
    said = "\n".join([outcome.text, *outcome.located, *outcome.refusals])
    assert case["says"] in said.replace(str(tmp_path) + "/", ""), said
    if case.get("command"):
        run = run_command(["plan", "--offline"], tmp_path)
        assert run.code == case["exit"], run.stdout + run.stderr
        assert run.peak_rss < 200 * 1024 * 1024
        assert case["says"] in (run.stdout + run.stderr).replace(str(tmp_path) + "/", "")


def test_the_corpus_files_are_all_listed() -> None:
    listed = {c["file"] for c in _corpus()}
    kept = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    assert kept - {"cases.yaml"} == listed
