"""The simulated control plane: Deployments, deploys, faults and timing.

Status is never advanced by a timer: a finalized deploy records *when* the
Deployment turns DEPLOYING and HEALTHY (already multiplied by the time scale),
and every read computes the status for "now", which the clock gives (astro.clock). So
there are no background tasks, and a restarted server continues exactly where it stopped.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fleet_sim.astro import dags, seeds
from fleet_sim.astro.catalog import Catalog
from fleet_sim.astro.clock import MODES, Clock
from fleet_sim.astro.faults import DEPLOY_TIME_FIELDS, merge_faults, validate_fault_set
from fleet_sim.astro.store import Store
from fleet_sim.errors import InputError
from fleet_sim.runtime_versions import is_airflow3

DEPLOY_TYPES = ("IMAGE_AND_DAG", "IMAGE_ONLY", "DAG_ONLY", "BUNDLE")

# Airflow reports a scheduler or triggerer healthy until its heartbeat is this old (s, NOT
# scaled: Airflow's scheduler_health_check_threshold / triggerer_health_check_threshold).
AIRFLOW_HEALTH_THRESHOLD = 30.0

# Simulated seconds, multiplied by time_scale, except where noted.
DEFAULT_CONFIG: dict[str, object] = {
    "time_scale": 1.0,
    "deploy_seconds": 60.0,  # image build + push as astro-sim sleeps it (3/4 build, 1/4 push)
    "healthy_after_seconds": 120.0,  # finalize -> HEALTHY (DEPLOYING in between)
    "deploying_after_seconds": 0.0,  # finalize -> DEPLOYING; before that the old status shows
    "wait_sleep_seconds": 90.0,  # astro deploy --wait sleeps this before polling (real CLI: 90)
    "wait_poll_seconds": 10.0,  # and then polls this often (real CLI: 10)
    "hang_seconds": 300.0,  # NOT scaled: a hang must outlast any client time-out
    "stale_heartbeat_age_seconds": 600.0,  # NOT scaled: age of a stopped scheduler heartbeat
    "heartbeat_seconds": 5.0,  # how often Airflow's scheduler and friends heartbeat
    "dag_run_seconds": 10.0,  # how long a triggered DAG run runs once it starts
    "organization_id": "org-sim",
    "runtime_releases": None,  # None = every non-yanked catalog version is deployable
}
DAGS_FOLDER = "/usr/local/airflow/dags"  # where Astro's images keep the project's dags/


class NotFound(LookupError):
    """The Deployment (or deploy) does not exist for the caller."""


class Conflict(RuntimeError):
    """The request is valid but refused in the current state (HTTP 400/500 with a message)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class SimState:
    """In-memory state with write-through persistence."""

    def __init__(self, store: Store, catalog: Catalog):
        self.store = store
        self.catalog = catalog
        self.config = dict(DEFAULT_CONFIG)
        self.config.update(store.load_meta("config", {}) or {})
        self.faults: dict[str, dict] = store.load_meta("faults", {}) or {}
        # When a standing fault that starts a clock (stale_heartbeat) was set, per Deployment.
        self.fault_since: dict[str, dict[str, float]] = store.load_meta("fault_since", {}) or {}
        self.deployments: dict[str, dict] = store.load_deployments()
        self.clock = Clock.from_json(store.load_meta("clock"))
        self.host = "127.0.0.1:0"  # set by the server once bound

    def now(self) -> float:
        """The simulated time (seconds since the epoch): what every status is computed for."""
        return self.clock.now()

    def set_clock(self, mode: str | None = None, advance: object = None) -> None:
        """Switch the clock's mode and/or move it forward by ``advance`` simulated seconds
        (multiplied by time_scale, as every delay setting is)."""
        if mode is not None and mode not in MODES:
            raise InputError(f"clock: mode: expected one of {', '.join(MODES)}")
        if advance is not None and not (isinstance(advance, int | float)
                                        and not isinstance(advance, bool) and advance >= 0):
            raise InputError("clock: advance: expected a number of seconds >= 0")
        if mode is not None:
            self.clock.set_mode(mode)
        if advance:
            self.clock.advance(float(advance) * float(self.config["time_scale"]))
        self.store.save_meta("clock", self.clock.to_json())

    # ----------------------------------------------------------- config
    def scaled(self, key: str) -> float:
        """A configured duration in real seconds (multiplied by time_scale)."""
        return float(self.config[key]) * float(self.config["time_scale"])

    def slept(self, key: str) -> float:
        """What astro-sim sleeps for a scaled duration: nothing while the clock is manual
        (time passes only when a test moves it)."""
        return 0.0 if self.clock.mode == "manual" else self.scaled(key)

    def configure(self, updates: dict) -> dict:
        """Change timing/config values; refuses unknown keys and negative numbers."""
        for key, value in updates.items():
            if key not in DEFAULT_CONFIG:
                raise InputError(
                    f"config: {key}: unknown setting; known: {', '.join(sorted(DEFAULT_CONFIG))}"
                )
            if key == "organization_id":
                if not (isinstance(value, str) and seeds.ID.fullmatch(value)):
                    raise InputError("config: organization_id: expected an id ([A-Za-z0-9._-])")
            elif key == "runtime_releases":
                if value is not None and not (
                    isinstance(value, list) and all(isinstance(v, str) for v in value)
                ):
                    raise InputError(
                        "config: runtime_releases: expected a list of versions or null"
                    )
            elif not (
                isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            ):
                raise InputError(f"config: {key}: expected a number >= 0")
            elif key == "time_scale" and value <= 0:
                raise InputError("config: time_scale: expected a number > 0")
        self.config.update(updates)
        self.store.save_meta("config", self.config)
        return self.config

    # ------------------------------------------------------ deployments
    def add_deployment(self, spec: dict) -> dict:
        """Create (or replace) a Deployment from an admin/seed spec."""
        seeds.check(spec)
        status = spec.get("status", "HEALTHY")
        t = self.now()
        doc = {
            "id": spec["id"],
            "name": spec["name"],
            "description": spec.get("description", ""),
            "namespace": spec.get("namespace", "sim-" + spec["id"].lower()),
            "organization_id": spec.get("organization_id", self.config["organization_id"]),
            "workspace_id": spec["workspace_id"],
            "workspace_name": spec.get("workspace_name", spec["workspace_id"]),
            "runtime_version": spec["runtime_version"],
            "airflow_version": spec.get("airflow_version"),
            "reported_runtime_version": None,
            "status": status,
            "image_tag": spec.get("image_tag", _image_tag(t)),
            "is_dag_deploy_enabled": spec.get("is_dag_deploy_enabled", True),
            "is_cicd_enforced": spec.get("is_cicd_enforced", False),
            "type": spec.get("type", "STANDARD"),
            "executor": spec.get("executor", "CELERY"),
            "cloud_provider": spec.get("cloud_provider", "AWS"),
            "region": spec.get("region", "us-east-1"),
            "dag_tarball_version": None,
            "created_at": t,
            "updated_at": t,
            "deploys": [],
            "pushed": {},
            "rollout": None,
            "scheduler_stale_since": None,
            "import_errors": [],
            "next_import_error_id": 1,
            "dags": dags.seed_dags(spec.get("dags", []), t),
            # Where Astro says the Airflow API is, when not here: a real Airflow for tests.
            "airflow_api_url": spec.get("airflow_api_url"),
        }
        self._set_import_errors(doc, spec.get("import_errors", []), t)
        self.deployments[doc["id"]] = doc
        self.store.save_deployment(doc)
        return doc

    def update_deployment(self, deployment_id: str, fields: dict) -> dict:
        """Admin change of a Deployment's fields; a status/runtime change ends any rollout."""
        doc = self.deployments.get(deployment_id)
        if doc is None:
            raise NotFound(f"no simulated Deployment with id {deployment_id!r}")
        seeds.check(fields, partial=True)
        t = self.now()
        if "status" in fields or "runtime_version" in fields:
            doc["status"] = self.status(doc, t)
            doc["rollout"] = None
            doc["reported_runtime_version"] = None
        for key, value in fields.items():
            if key == "import_errors":
                doc["import_errors"] = []
                self._set_import_errors(doc, value, t)
            elif key == "dags":
                doc["dags"] = dags.seed_dags(value, t)
            else:
                doc[key] = value
        doc["updated_at"] = t
        self.store.save_deployment(doc)
        return doc

    def delete_deployment(self, deployment_id: str) -> None:
        """Forget a Deployment (its faults stay until cleared)."""
        if self.deployments.pop(deployment_id, None) is None:
            raise NotFound(f"no simulated Deployment with id {deployment_id!r}")
        self.store.delete_deployment(deployment_id)

    def reset(self) -> None:
        """Forget every Deployment and fault; timing back to defaults (the time scale and
        the clock kept: time does not go back)."""
        keep = {k: self.config[k] for k in ("time_scale", "organization_id")}
        self.deployments.clear()
        self.faults.clear()
        self.fault_since.clear()
        self.store.clear()
        self.config = {**DEFAULT_CONFIG, **keep}
        self.store.save_meta("config", self.config)
        self.store.save_meta("clock", self.clock.to_json())

    def visible(self, deployment_id: str) -> dict | None:
        """The Deployment as the platform sees it: None if absent or faulted 'missing'."""
        doc = self.deployments.get(deployment_id)
        if doc is None:
            return None
        fault = self.faults.get(deployment_id)
        if fault and fault.get("missing"):
            return None
        return doc

    # ----------------------------------------------------------- faults
    def set_faults(self, deployment_id: str, update: dict) -> dict:
        """Merge fault fields for one Deployment (a None value clears that field)."""
        validate_fault_set(update, where=f"faults.{deployment_id}")
        merged = merge_faults(self.faults.get(deployment_id, {}), update)
        self._clocks(deployment_id, self.faults.get(deployment_id, {}), merged)
        if merged:
            self.faults[deployment_id] = merged
        else:
            self.faults.pop(deployment_id, None)
        self.store.save_meta("faults", self.faults)
        return merged

    def replace_all_faults(self, faults: dict[str, dict]) -> None:
        """Install a whole faults file's content (replacing what was there)."""
        for dep_id, spec in faults.items():
            validate_fault_set(spec, where=f"faults.{dep_id}")
        for dep_id in set(self.faults) | set(faults):
            self._clocks(dep_id, self.faults.get(dep_id, {}), faults.get(dep_id) or {})
        self.faults = {k: dict(v) for k, v in faults.items() if v}
        self.store.save_meta("faults", self.faults)

    def clear_faults(self, deployment_id: str) -> None:
        """Remove every fault of one Deployment."""
        self._clocks(deployment_id, self.faults.get(deployment_id, {}), {})
        self.faults.pop(deployment_id, None)
        self.store.save_meta("faults", self.faults)

    def _clocks(self, deployment_id: str, before: dict, after: dict) -> None:
        """Start the clock of a standing fault when it is switched on; stop it when off."""
        since = self.fault_since.setdefault(deployment_id, {})
        for field in ("stale_heartbeat",):
            if after.get(field) and not before.get(field):
                since[field] = self.now()
            elif not after.get(field):
                since.pop(field, None)
        if not since:
            self.fault_since.pop(deployment_id, None)
        self.store.save_meta("fault_since", self.fault_since)
        doc = self.deployments.get(deployment_id)
        if doc is not None and bool(after.get("scheduled_runs_fail")) != bool(
                before.get("scheduled_runs_fail")):
            # The spans outlive the fault: the runs that failed stay failed in the history.
            spans = doc.setdefault("run_fail_spans", [])
            if after.get("scheduled_runs_fail"):
                spans.append([self.now(), None])
            elif spans and spans[-1][1] is None:
                spans[-1][1] = self.now()
            self.save(doc)

    def run_fail_spans(self, doc: dict) -> list[tuple[float, float | None]]:
        """When scheduled runs of ``doc`` fail (fault ``scheduled_runs_fail``): each span
        from the end of the rollout that followed the fault being set (the new Runtime
        breaks them) to when it was cleared; a span no rollout followed has not begun."""
        rollout = doc.get("rollout")
        ended = rollout["healthy_at"] if rollout is not None else None
        out = []
        for start, end in doc.get("run_fail_spans", []):
            if ended is None or ended < start or (end is not None and end <= ended):
                continue
            out.append((ended, end))
        return out

    def save(self, doc: dict) -> None:
        """Write one changed Deployment through (the Airflow API's DAG changes)."""
        self.store.save_deployment(doc)

    def deploy_attempt(self, deployment_id: str) -> str | None:
        """astro-sim starts a deploy: fire (and consume) a forced exit-0 trap, if any."""
        fault = self.faults.get(deployment_id)
        if not fault or "deploy_noop" not in fault:
            return None
        kind = fault["deploy_noop"]
        if not fault.get("persistent"):
            self._consume(deployment_id, ("deploy_noop",))
        return kind

    def airflow_gate(self, deployment_id: str) -> tuple[str, float] | None:
        """Count down the Airflow API faults: ("hang", seconds) or ("5xx", status)."""
        fault = self.faults.get(deployment_id)
        if not fault:
            return None
        for field, kind in (("airflow_hang", "hang"), ("airflow_5xx", "5xx")):
            left = fault.get(field, 0)
            if left > 0:
                if left == 1:
                    self._consume(deployment_id, (field,))
                else:
                    fault[field] = left - 1
                    self.store.save_meta("faults", self.faults)
                if kind == "hang":
                    return kind, float(self.config["hang_seconds"])
                return kind, float(fault.get("airflow_5xx_status", 503))
        return None

    def _consume(self, deployment_id: str, fields: tuple[str, ...]) -> None:
        fault = self.faults.get(deployment_id, {})
        for field in fields:
            fault.pop(field, None)
        if not fault or set(fault) <= {"persistent", "airflow_5xx_status"}:
            self.faults.pop(deployment_id, None)
        self.store.save_meta("faults", self.faults)

    # ---------------------------------------------------- computed views
    def status(self, doc: dict, t: float) -> str:
        """The status at time ``t``, derived from the last rollout's timestamps."""
        r = doc["rollout"]
        if r is None:
            return doc["status"]
        if t < r["deploying_at"]:
            return r["prior_status"]
        if r["healthy_at"] is None or t < r["healthy_at"]:
            return "DEPLOYING"
        return r["final_status"]

    def reported_runtime(self, doc: dict) -> str:
        """The Runtime version the platform API reports (faults may lie about it)."""
        return doc["reported_runtime_version"] or doc["runtime_version"]

    def running_runtime(self, doc: dict, t: float) -> str:
        """The Runtime the Airflow webserver runs: the old one until the rollout completes."""
        r = doc["rollout"]
        if r is not None and (r["healthy_at"] is None or t < r["healthy_at"]):
            return r["from_runtime"]
        return self.reported_runtime(doc)

    def airflow_version_for(self, doc: dict, runtime_version: str) -> str:
        """Airflow version for a Runtime: a seeded override wins until the next deploy."""
        return doc["airflow_version"] or self.catalog.airflow_version(runtime_version)

    def is_af3_running(self, doc: dict, t: float) -> bool:
        """Whether the running webserver speaks Airflow 3 (``/api/v2``)."""
        return is_airflow3(self.running_runtime(doc, t))

    def visible_import_errors(self, doc: dict, t: float) -> list[dict]:
        """Import errors that exist at ``t`` (new ones appear when the rollout completes)."""
        return [e for e in doc["import_errors"] if e["visible_at"] <= t]

    def scheduler_stale_since(self, doc: dict, t: float) -> float | None:
        """When the scheduler heartbeat stopped, if it has."""
        since = doc["scheduler_stale_since"]
        return since if since is not None and since <= t else None

    def scheduler_frozen_at(self, doc: dict, t: float) -> float | None:
        """When the ``stale_heartbeat`` fault froze the scheduler's heartbeat, if it has:
        when the fault was set, or the end of a rollout that ended after that."""
        since = self.fault_since.get(doc["id"], {}).get("stale_heartbeat")
        if since is None or not self.faults.get(doc["id"], {}).get("stale_heartbeat"):
            return None
        rollout = doc["rollout"]
        ended = rollout["healthy_at"] if rollout is not None else None
        if ended is not None and since < ended:
            # The new scheduler beats until the rollout ends, then freezes.
            return ended if ended <= t else None
        return since if since <= t else None

    def _set_import_errors(self, doc: dict, errors: list, t: float) -> None:
        for err in errors:
            stamp = seeds.parse_time(err.get("timestamp")) or t
            name = err["filename"]
            doc["import_errors"].append(
                {
                    "import_error_id": doc["next_import_error_id"],
                    # Airflow reports the absolute path of the file it parsed.
                    "filename": name if name.startswith("/") else f"{DAGS_FOLDER}/{name}",
                    "stack_trace": str(err.get("stack_trace", "")),
                    "timestamp": stamp,
                    "visible_at": min(stamp, t),
                }
            )
            doc["next_import_error_id"] += 1

    # ---------------------------------------------------------- deploys
    def create_deploy(self, doc: dict, body: dict) -> tuple[dict, dict]:
        """POST …/deploys: record an INITIALIZED deploy; return it and the build timing."""
        deploy_type = body.get("type", "IMAGE_AND_DAG")
        if deploy_type not in DEPLOY_TYPES:
            raise InputError(f"Invalid request body: type must be one of {', '.join(DEPLOY_TYPES)}")
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise InputError("Invalid request body: description must be a string")
        t = self.now()
        used = {d["image_tag"] for d in doc["deploys"]} | {doc["image_tag"]}
        stamp = t
        tag = _image_tag(stamp)
        while tag in used:  # the real tag has 1 s resolution; keep ours unique
            stamp += 1
            tag = _image_tag(stamp)
        deploy = {
            "id": f"{doc['id']}-deploy-{len(doc['deploys']) + 1}",
            "type": deploy_type,
            "status": "INITIALIZED",
            "image_tag": tag,
            "image_repository": (
                f"images.astronomer.cloud/{doc['organization_id']}/{doc['namespace']}"
            ),
            "runtime_version": None,
            "airflow_version": None,
            "description": description,
            "git": _deploy_git(body.get("git")),
            "dag_tarball_version": None,
            "created_at": t,
            "finalized_at": None,
            "error": None,
        }
        doc["deploys"].append(deploy)
        doc["updated_at"] = t
        self.store.save_deployment(doc)
        fault = self.faults.get(doc["id"], {})
        total = self.slept("deploy_seconds")
        extra = float(fault.get("deploy_extra_seconds", 0.0)) * float(self.config["time_scale"])
        if self.clock.mode == "manual":
            extra = 0.0
        timing = {"build_seconds": total * 0.75 + extra, "push_seconds": total * 0.25}
        return deploy, timing

    def push_image(self, doc: dict, tag: str, body: dict) -> str:
        """The simulated registry receives an image carrying its Runtime label; returns the
        manifest's digest (``sha256:…``), as a registry answers a push."""
        label = body.get("runtimeVersion")
        if not isinstance(label, str) or not label:
            raise InputError("the pushed image has no io.astronomer.docker.runtime.version label")
        if not any(d["image_tag"] == tag for d in doc["deploys"]):
            raise Conflict(f"no deploy of {doc['id']} expects image tag {tag}")
        doc["pushed"][tag] = {
            "runtime_version": label,
            "image": body.get("image"),
            "pushed_at": self.now(),
        }
        self.store.save_deployment(doc)
        repository = next(d["image_repository"] for d in doc["deploys"] if d["image_tag"] == tag)
        return "sha256:" + hashlib.sha256(f"{repository}:{tag}:{label}".encode()).hexdigest()

    def finalize_deploy(self, doc: dict, deploy_id: str, body: dict) -> dict:
        """POST …/deploys/{id}/finalize: roll the pushed image out (faults apply here)."""
        deploy = next((d for d in doc["deploys"] if d["id"] == deploy_id), None)
        if deploy is None:
            raise NotFound("Deploy not found")
        if deploy["status"] != "INITIALIZED":
            raise Conflict(f"Deploy {deploy_id} has already been finalized")
        fault = self.faults.get(doc["id"], {})
        consume = not fault.get("persistent")
        t = self.now()
        if fault.get("deploy_error"):
            message = fault["deploy_error"]
            deploy.update(status="FAILED", finalized_at=t, error=message)
            doc["updated_at"] = t
            self.store.save_deployment(doc)
            if consume:
                self._consume(doc["id"], ("deploy_error", "deploy_extra_seconds"))
            raise Conflict(message, status=500)
        has_image = deploy["type"] in ("IMAGE_AND_DAG", "IMAGE_ONLY")
        pushed = doc["pushed"].get(deploy["image_tag"])
        if has_image and pushed is None:
            raise Conflict(
                f"Image {deploy['image_repository']}:{deploy['image_tag']} has not been pushed"
            )
        dag_version = body.get("dagTarballVersion")
        if isinstance(dag_version, str) and dag_version:
            deploy["dag_tarball_version"] = dag_version
            doc["dag_tarball_version"] = dag_version
        if has_image:
            self._roll_out(doc, pushed["runtime_version"], fault, t)
            doc["image_tag"] = deploy["image_tag"]
        deploy.update(
            status="DEPLOYED",
            finalized_at=t,
            runtime_version=doc["runtime_version"],
            airflow_version=self.catalog.airflow_version(doc["runtime_version"]),
        )
        doc["updated_at"] = t
        self.store.save_deployment(doc)
        if consume and any(f in fault for f in DEPLOY_TIME_FIELDS):
            self._consume(doc["id"], DEPLOY_TIME_FIELDS)
        return deploy

    def _roll_out(self, doc: dict, runtime_version: str, fault: dict, t: float) -> None:
        from_runtime = self.running_runtime(doc, t)
        prior_status = self.status(doc, t)
        deploying_at = t + self.scaled("deploying_after_seconds")
        healthy_at = (
            None
            if fault.get("stuck_deploying")
            else deploying_at + self.scaled("healthy_after_seconds")
        )
        doc["runtime_version"] = runtime_version
        doc["airflow_version"] = None  # a new image reports its own Airflow
        doc["reported_runtime_version"] = fault.get("reported_runtime_version")
        doc["rollout"] = {
            "from_runtime": from_runtime,
            "prior_status": prior_status,
            "deploying_at": deploying_at,
            "healthy_at": healthy_at,
            "final_status": "UNHEALTHY" if fault.get("unhealthy_after_deploy") else "HEALTHY",
        }
        doc["scheduler_stale_since"] = t if fault.get("scheduler_stale_after_deploy") else None
        visible_at = healthy_at if healthy_at is not None else deploying_at
        for _ in range(int(fault.get("import_errors_after_deploy", 0))):
            n = doc["next_import_error_id"]
            doc["import_errors"].append(
                {
                    "import_error_id": n,
                    "filename": f"{DAGS_FOLDER}/broken_dag_{n}.py",
                    "stack_trace": (
                        "Traceback (most recent call last):\n"
                        f'  File "/usr/local/airflow/dags/broken_dag_{n}.py", line 3, in <module>\n'
                        "    from airflow.operators.dummy import DummyOperator\n"
                        "ModuleNotFoundError: No module named 'airflow.operators.dummy'\n"
                    ),
                    "timestamp": visible_at,
                    "visible_at": visible_at,
                }
            )
            doc["next_import_error_id"] = n + 1


# CreateDeployGitRequest: provider and commitSha required; the rest optional strings.
_GIT_FIELDS = ("provider", "commitSha", "account", "repo", "branch", "path", "commitUrl",
               "remoteUrl", "authorName", "authorUrl", "authorUsername", "beforeCommitSha")
_GIT_PROVIDERS = ("GITHUB", "GENERIC")


def _deploy_git(git: object) -> dict | None:
    """The ``git`` object of a create-deploy request as the platform stores it."""
    if git is None:
        return None
    if not isinstance(git, dict):
        raise InputError("Invalid request body: git must be an object")
    if git.get("provider") not in _GIT_PROVIDERS or not git.get("commitSha"):
        raise InputError("Invalid request body: git.provider (GITHUB or GENERIC) and "
                         "git.commitSha are required")
    bad = [k for k, v in git.items() if k not in _GIT_FIELDS or not isinstance(v, str)]
    if bad:
        raise InputError(f"Invalid request body: git.{bad[0]} is not a known string field")
    return dict(git)


def _image_tag(t: float) -> str:
    return "deploy-" + datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H-%M-%S")
