"""The platform API reader against a real HTTP server on loopback: shapes, paging, retries,
typed refusals, and a token that never shows up in a message."""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import UTC, datetime

import pytest

from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.controlplane.http import RetryPolicy
from upgrade.controlplane.platform import PlatformReader, api_base, platform_info
from upgrade.errors import AstroAuthError, AstroError, DeploymentNotFound, InputError, PlatformError

ORG = "clorg0001"
DEP = "/v1/organizations/clorg0001/deployments/cldep0001"


def jwt(*permissions: str) -> str:
    """An unsigned JWT shaped like an Astro API token (only its claims are read)."""
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    return ".".join((part({"alg": "none"}), part({"permissions": list(permissions)}), "sig"))


TOKEN = jwt(f"organizationId:{ORG}")

# The platform API's v1 Deployment object, with the API reference's example values.
DEPLOYMENT = {
    "id": "cldep0001", "name": "analytics-prod", "namespace": "stellar-orbit-1234",
    "organizationId": ORG, "workspaceId": "clws0001", "workspaceName": "Data Platform",
    "airflowVersion": "2.10.5", "astroRuntimeVersion": "12.7.1", "runtimeVersion": "12.7.1",
    "status": "healthy", "imageRepository": "images.astronomer.cloud/x/y",
    "imageTag": "deploy-2025-09-18T03-59-02", "isCicdEnforced": True,
    "isDagDeployEnabled": True, "type": "DEDICATED", "executor": "CELERY",
    "clusterId": "clcluster01", "description": "the nightly loads",
    "webServerUrl": "myorganization.astronomer-dev.run/d8fe2wmv?orgId=org_1",
    "webServerAirflowApiUrl": "myorganization.astronomer-dev.run/d8fe2wmv/api/v1",
    "createdAt": "2024-01-12T18:32:20.589Z", "updatedAt": "2025-09-18T03:59:02.000Z",
}


def reader(server, token: str = TOKEN, **kw) -> PlatformReader:
    retry = kw.pop("retry", RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.05, total=5))
    return PlatformReader(f"http://127.0.0.1:{server.port}/v1", token, retry=retry,
                          timeout=kw.pop("timeout", 2.0), **kw)


def test_one_deployment_maps_to_what_inspect_reports(http_server) -> None:
    http_server.script(DEP, ("json", 200, DEPLOYMENT))
    with reader(http_server) as api:
        info = api.deployment("cldep0001", "clws0001")
    assert (info.id, info.name, info.workspace_id) == ("cldep0001", "analytics-prod", "clws0001")
    assert (info.runtime_version, info.airflow_version) == ("12.7.1", "2.10.5")
    assert info.status == "HEALTHY" and info.is_healthy
    assert info.image_tag == "deploy-2025-09-18T03-59-02"
    assert info.airflow_api_url == "myorganization.astronomer-dev.run/d8fe2wmv/api/v1"
    assert info.webserver_url.endswith("?orgId=org_1")
    assert info.deployment_url == "cloud.astronomer.io/clws0001/deployments/cldep0001"
    assert info.created_at == datetime(2024, 1, 12, 18, 32, 20, 589000, tzinfo=UTC)
    assert (info.deployment_type, info.executor, info.cluster_id) == (
        "DEDICATED", "CELERY", "clcluster01")
    assert info.dag_deploy_enabled and info.ci_cd_enforcement
    assert info.workspace_name == "Data Platform" and info.description == "the nightly loads"
    # The organisation came from the token's claims: no /organizations call was needed.
    assert [s.path for s in http_server.seen] == [DEP]
    assert http_server.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_mapping_follows_the_cli_where_the_api_differs() -> None:
    # The CLI reads the deprecated runtimeVersion, and prints N/A for a Standard cluster.
    info = platform_info({**DEPLOYMENT, "runtimeVersion": "3.0-7", "astroRuntimeVersion": "x",
                          "type": "STANDARD"})
    assert info.runtime_version == "3.0-7" and info.cluster_id == "N/A"
    only_new = {k: v for k, v in DEPLOYMENT.items() if k != "runtimeVersion"}
    assert platform_info(only_new).runtime_version == "12.7.1"
    with pytest.raises(PlatformError, match="without an id"):
        platform_info({"name": "x"})


def test_without_an_organisation_claim_the_first_organisation_is_read_once(http_server) -> None:
    http_server.script("/v1/organizations", ("json", 200, {"organizations": [{"id": ORG}]}))
    http_server.script(DEP, ("json", 200, DEPLOYMENT))
    with reader(http_server, token=jwt("workspaceId:clws0001")) as api:
        threads = [threading.Thread(target=api.deployment, args=("cldep0001",))
                   for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(http_server.requests_to("/v1/organizations")) == 1
    assert len(http_server.requests_to(DEP)) == 16


def test_a_workspace_is_read_page_by_page(http_server) -> None:
    items = [{**DEPLOYMENT, "id": f"cldep{n:04d}"} for n in range(3)]

    def page(query: dict) -> tuple:
        offset = int(query["offset"][0])
        # A server may answer smaller pages than asked for; follow totalCount.
        return ("json", 200, {"deployments": items[offset:offset + 2], "totalCount": 3,
                              "offset": offset, "limit": 2})

    http_server.script("/v1/organizations/clorg0001/deployments", page)
    with reader(http_server) as api:
        found = api.workspace("clws0001")
    assert sorted(found) == ["cldep0000", "cldep0001", "cldep0002"]
    assert [s.query["offset"] for s in http_server.seen] == [["0"], ["2"]]
    assert all(s.query["workspaceIds"] == ["clws0001"] for s in http_server.seen)


def test_5xx_and_dropped_connections_are_retried(http_server) -> None:
    http_server.script(DEP, ("json", 503, {"message": "busy"}), ("reset",),
                       ("json", 200, DEPLOYMENT))
    with reader(http_server) as api:
        assert api.deployment("cldep0001").status == "HEALTHY"
    assert len(http_server.requests_to(DEP)) == 3


def test_a_429_waits_as_long_as_retry_after_says(http_server, caplog) -> None:
    http_server.script(DEP, ("json", 429, {"message": "rate limited"}, {"Retry-After": "0.4"}),
                       ("json", 200, DEPLOYMENT))
    caplog.set_level(logging.INFO, logger="upgrade.controlplane.http")
    with reader(http_server) as api:
        api.deployment("cldep0001")
    # The wait it chose (its back-off alone would be 0.01 s), as it logs it before sleeping.
    assert "retrying in 0.40s (attempt 2 of 3)" in caplog.text
    assert len(http_server.requests_to(DEP)) == 2


def test_retries_are_bounded_and_the_error_says_so(http_server) -> None:
    http_server.script(DEP, ("json", 502, {"message": "bad gateway"}))
    with reader(http_server) as api, pytest.raises(PlatformError) as info:
        api.deployment("cldep0001")
    assert isinstance(info.value, AstroError)
    assert info.value.attempts == 3 and info.value.status_code == 502
    assert "answered 502: bad gateway; gave up after 3 attempt(s)." in str(info.value)
    assert len(http_server.requests_to(DEP)) == 3


def test_an_api_that_does_not_answer_times_out(http_server) -> None:
    http_server.script(DEP, ("hang", 600))  # until the test ends: only the time-out helps
    retry = RetryPolicy(attempts=2, backoff=0.01, backoff_max=0.01, total=5)
    with reader(http_server, timeout=0.3, retry=retry) as api, pytest.raises(
            PlatformError, match="timed out") as info:
        api.deployment("cldep0001")
    assert info.value.attempts == 2


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_token_is_an_auth_error_without_the_token(http_server, code: int) -> None:
    # A server that echoes the credential back must not get it into our messages.
    http_server.script(DEP, ("json", code, {"message": f"token {TOKEN} is not allowed"}))
    with reader(http_server) as api, pytest.raises(AstroAuthError) as info:
        api.deployment("cldep0001")
    text = str(info.value) + info.value.astro_message
    assert TOKEN not in text and "***" in text
    assert f"refused the token ({code})" in text and "ASTRO_API_TOKEN" in text
    assert len(http_server.requests_to(DEP)) == 1  # never retried


def test_an_unknown_deployment_is_deployment_not_found(http_server) -> None:
    http_server.script(DEP, ("json", 404, {"message": "Deployment not found",
                                           "statusCode": 404}))
    with reader(http_server) as api, pytest.raises(DeploymentNotFound) as info:
        api.deployment("cldep0001")
    assert info.value.astro_message == "Deployment not found"
    assert info.value.deployment_id == "cldep0001"
    assert len(http_server.requests_to(DEP)) == 1


def test_a_deployment_of_another_workspace_is_not_found_there(http_server) -> None:
    http_server.script(DEP, ("json", 200, DEPLOYMENT))
    with reader(http_server) as api, pytest.raises(DeploymentNotFound) as info:
        api.deployment("cldep0001", "clws-other")
    assert "is not in workspace clws-other (Astro has it in clws0001)" in str(info.value)


def test_bodies_that_are_not_the_documented_shape_are_refused(http_server) -> None:
    http_server.script(DEP, ("raw", 200, "<html>login</html>"))
    with reader(http_server) as api, pytest.raises(PlatformError, match="not JSON"):
        api.deployment("cldep0001")
    http_server.script(DEP, ("json", 200, {**DEPLOYMENT, "id": "cldep9999"}))
    with reader(http_server) as api, pytest.raises(PlatformError, match="refusing to use it"):
        api.deployment("cldep0001")


def test_ids_that_would_change_the_url_are_refused_before_any_request(http_server) -> None:
    with reader(http_server) as api:
        for bad in ("../organizations", "-x", "", "a/b"):
            with pytest.raises(InputError, match="not a valid Astro id"):
                api.deployment(bad)
    assert http_server.seen == []


def test_the_reader_exists_only_with_a_token_and_never_in_clear_text_off_this_machine(
        monkeypatch) -> None:
    monkeypatch.delenv("ASTRO_API_TOKEN", raising=False)
    monkeypatch.delenv("ASTRO_DOMAIN", raising=False)
    assert PlatformReader.for_config(ControlPlaneConfig()) is None
    # A stand-in's variables are only environment: the API is Astro's unless api_url says.
    env = {"ASTRO_API_TOKEN": TOKEN, "ASTRO_SIM_URL": "http://127.0.0.1:9"}
    prod = PlatformReader.for_config(ControlPlaneConfig(extra_env=env))
    assert prod is not None and prod.base_url == "https://api.astronomer.io/v1"
    prod.close()
    remote = ControlPlaneConfig(api_url="http://sim.example.com:8080/v1", extra_env=env)
    assert PlatformReader.for_config(remote) is None
    local = PlatformReader.for_config(ControlPlaneConfig(api_url="http://127.0.0.1:9/v1",
                                                         extra_env=env))
    assert local is not None and local.base_url == "http://127.0.0.1:9/v1"
    local.close()


def test_api_base_follows_the_cli_domains() -> None:
    assert api_base("astronomer.io") == "https://api.astronomer.io/v1"
    assert api_base("www.astronomer.io") == "https://api.astronomer.io/v1"
    assert api_base("pr1234.astronomer-dev.io") == "https://pr1234.api.astronomer-dev.io/v1"
    assert api_base("astronomer-stage.io") == "https://api.astronomer-stage.io/v1"
