"""The checkouts the tool keeps of repos given by URL, against real git and bare origins."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.checkouts.git_http import serving
from tests.checkouts.helpers import GIT, make_origin
from upgrade.config.inventory import Inventory, Repo
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import EXIT_LOCKED, EXIT_SERVICE, CheckoutFailed, LockHeld
from upgrade.hosts.checkouts import Checkouts
from upgrade.hosts.git import push_branch
from upgrade.hosts.host import LocalHost


def inventory(tmp_path: Path, urls: dict[str, str], **repo: object) -> Inventory:
    specs = {name: {"url": url, "git": {"mode": "direct"}, **repo,
                    "deployments": [{"id": f"cl{n}", "name": f"{name}-prod",
                                     "workspace_id": "ws1", "wave": 1}]}
             for n, (name, url) in enumerate(urls.items())}
    path = tmp_path / "fleet" / "inventory.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"target": "12.4", "repos": specs}), "utf-8")
    return load_inventory(path)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path / "origins", "dags", history=3)


@pytest.fixture
def repo(tmp_path: Path, origin: Path) -> Repo:
    return inventory(tmp_path, {"dags": origin.as_uri()}).repos["dags"]


def test_first_use_clones_blobless_and_checks_out_the_default_branch(
        repo: Repo, origin: Path) -> None:
    with Checkouts() as checkouts:
        checkouts.ready(repo)
    d = repo.path
    assert (d / "Dockerfile").is_file()
    assert git(d, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(d, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
    assert git(d, "config", "remote.origin.partialclonefilter") == "blob:none"
    # Every commit is here (enough history to rebase); old file contents stay on the remote.
    assert git(d, "rev-list", "--count", "HEAD") == "4"
    missing = git(d, "rev-list", "--objects", "--all", "--missing=print").splitlines()
    assert any(line.startswith("?") for line in missing)
    assert git(d, "status", "--porcelain") == ""


def test_each_command_fetches_and_starts_from_a_clean_origin_default(
        tmp_path: Path, repo: Repo, origin: Path) -> None:
    with Checkouts() as checkouts:
        checkouts.ready(repo)
    d = repo.path
    # What an earlier run (or a person) left behind: a local commit, an edit, litter.
    (d / "Dockerfile").write_text("FROM elsewhere\n", "utf-8")
    subprocess.run([*GIT, "commit", "-qam", "local only"], cwd=d, check=True)
    (d / "dags" / "example_dag.py").write_text("edited\n", "utf-8")
    (d / "untracked.txt").write_text("litter\n", "utf-8")
    # Meanwhile someone pushes to the origin.
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", origin.as_uri(), str(other)], check=True)
    (other / "README.md").write_text("moved on\n", "utf-8")
    subprocess.run([*GIT, "add", "README.md"], cwd=other, check=True)
    subprocess.run([*GIT, "commit", "-qm", "Moved on"], cwd=other, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=other, check=True)

    with Checkouts() as checkouts:  # the next command
        checkouts.ready(repo)
        checkouts.ready(repo)  # once per command: the second call does nothing

    assert git(d, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
    assert git(d, "status", "--porcelain", "--ignored") == ""
    assert (d / "README.md").read_text("utf-8") == "moved on\n"


def test_two_runs_never_share_a_checkout(repo: Repo) -> None:
    with Checkouts() as first:
        first.ready(repo)
        with pytest.raises(LockHeld) as held:
            Checkouts().ready(repo)
    assert held.value.exit_code == EXIT_LOCKED
    assert str(held.value).startswith(f"repos.dags: its checkout {repo.path} is in use by pid ")
    assert "give this run a workdir of its own" in str(held.value)
    with Checkouts() as again:  # released when the first run ended
        again.ready(repo)


def test_an_unreachable_url_is_exit_7_naming_the_repo(tmp_path: Path) -> None:
    gone = (tmp_path / "origins" / "gone.git").as_uri()
    repo = inventory(tmp_path, {"gone": gone}).repos["gone"]
    with pytest.raises(CheckoutFailed) as failed, Checkouts() as checkouts:
        checkouts.ready(repo)
    assert failed.value.exit_code == EXIT_SERVICE
    message = str(failed.value)
    assert message.startswith(f"repos.gone: could not clone {gone} (")
    assert message.endswith("Check that the URL is right and reachable from here and that "
                            "git's credential helper or the SSH agent may read it, then run "
                            "again.")


def test_a_refused_https_token_never_shows(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 9 of loopback: the clone fails the way an outage does.
    token = "ghp_checkoutsecret0000000000000000000"
    monkeypatch.setenv("DAGS_AUTH", token)
    url = "https://127.0.0.1:9/acme/dags.git"
    repo = inventory(tmp_path, {"dags": url}, token_env="DAGS_AUTH").repos["dags"]
    with pytest.raises(CheckoutFailed) as failed, Checkouts() as checkouts:
        checkouts.ready(repo)
    message = str(failed.value)
    assert message.startswith(f"repos.dags: could not clone {url} (")
    assert "the token in $DAGS_AUTH may read it" in message and token not in message


def test_the_token_reaches_git_only_through_the_checkouts_credential_helper(
        tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "glpat-checkouthelpertoken00000"
    monkeypatch.setenv("DAGS_AUTH", token)
    # The user's own helper would answer with other credentials: the checkout drops it.
    store = tmp_path / "store"
    store.write_text("https://someone:theirpassword@gitlab.example\n", "utf-8")
    user_config = tmp_path / "gitconfig"
    # The https URL is served by the file origin (git's own URL rewriting), so the clone is
    # real; only `git credential fill` below shows what git would send over https.
    user_config.write_text(f"[credential]\n\thelper = store --file={store}\n"
                           f'[url "{origin.parent.as_uri()}/"]\n'
                           "\tinsteadOf = https://gitlab.example/acme/\n", "utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user_config))
    repo = inventory(tmp_path, {"dags": "https://gitlab.example/acme/dags.git"},
                     token_env="DAGS_AUTH").repos["dags"]
    assert repo.managed is not None
    with Checkouts() as checkouts:
        checkouts.ready(repo)
    d = repo.managed.checkout
    asked = subprocess.run(["git", "credential", "fill"], cwd=d, capture_output=True,
                           text=True, check=True,
                           input="protocol=https\nhost=gitlab.example\npath=acme/dags.git\n\n")
    assert f"password={token}" in asked.stdout and "theirpassword" not in asked.stdout
    # Nothing of the token is written anywhere in the checkout's git directory.
    for path in (d / ".git").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


TOKEN = "ghp_gitservedtoken00000000000000000000"


def test_over_http_the_token_clones_fetches_and_pushes_through_the_helper(
        tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGS_AUTH", TOKEN)
    with serving(origin.parent, TOKEN) as server:
        url = f"{server.url}/dags.git"
        repo = inventory(tmp_path, {"dags": url}, token_env="DAGS_AUTH").repos["dags"]
        with Checkouts() as checkouts:
            checkouts.ready(repo)
        d = repo.path
        assert git(d, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
        assert git(d, "config", "remote.origin.partialclonefilter") == "blob:none"
        # A push (as the commit step makes it) authenticates through the same helper.
        (d / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
        subprocess.run([*GIT, "commit", "-qam", "Upgrade"], cwd=d, check=True)
        pushed = push_branch(LocalHost(), str(d), "origin", "HEAD", "main")
        assert pushed.outcome == "pushed"
        assert git(origin, "rev-parse", "main") == git(d, "rev-parse", "HEAD")
        with Checkouts() as checkouts:  # the next command fetches with it too
            checkouts.ready(repo)
    sent = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert set(server.seen) == {f"Basic {sent}"}
    assert git(d, "remote", "get-url", "origin") == url
    for path in (d / ".git").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes() and sent.encode() not in \
                path.read_bytes(), path


def test_a_refused_token_is_exit_7_naming_the_repo_and_never_shown(
        tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "ghp_wrongtoken000000000000000000000000"
    monkeypatch.setenv("DAGS_AUTH", wrong)
    with serving(origin.parent, TOKEN) as server:
        url = f"{server.url}/dags.git"
        repo = inventory(tmp_path, {"dags": url}, token_env="DAGS_AUTH").repos["dags"]
        with pytest.raises(CheckoutFailed) as failed, Checkouts() as checkouts:
            checkouts.ready(repo)
    message = str(failed.value)
    assert failed.value.exit_code == EXIT_SERVICE
    assert message.startswith(f"repos.dags: could not clone {url} (")
    assert "Authentication failed" in message and wrong not in message
