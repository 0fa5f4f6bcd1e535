"""``repos.X.url`` and ``workdir:`` as the inventory loader validates them: every refusal
names the file, the line and the key, and says what to do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from upgrade.config.inventory_loader import configured_secrets, load_inventory
from upgrade.errors import InventoryError

BASE = """\
target: "12.4"
repos:
  dags:
    url: {url}
    git: {{mode: direct}}
    deployments:
      - {{id: cl1, name: dags-prod, workspace_id: ws1, wave: 1}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("url", [
    "https://github.com/acme/dags.git",
    "git@github.com:acme/dags.git",
    "ssh://git@gitlab.example.com:2222/team/dags.git",
    "file:///srv/git/dags.git",
])
def test_a_repo_given_by_url_is_kept_under_the_workdir(tmp_path: Path, url: str) -> None:
    inventory = load_inventory(write(tmp_path, BASE.format(url=url)))
    repo = inventory.repos["dags"]
    assert repo.managed is not None and repo.managed.url == url
    # Nothing needs to exist yet: the checkout is made when a command first reads the repo.
    assert inventory.workdir == tmp_path / ".upgrade" / "checkouts"
    assert repo.path == repo.managed.checkout == inventory.workdir / "dags"
    assert inventory.merged_view("dags-prod")["url"] == url


def test_workdir_and_directory_place_the_project(tmp_path: Path) -> None:
    text = "workdir: ci/checkouts\n" + BASE.format(url="https://h.example/acme/mono.git")
    text = text.replace("    git:", "    directory: astro/project\n    git:")
    repo = load_inventory(write(tmp_path, text)).repos["dags"]
    assert repo.managed is not None
    assert repo.managed.checkout == tmp_path / "ci" / "checkouts" / "dags"
    assert repo.path == repo.managed.checkout / "astro" / "project"


WHERE = "inventory.yaml"


@pytest.mark.parametrize(("url", "said"), [
    ("https://bot:s3cretvalue@github.com/acme/dags.git",
     "repos.dags.url: holds a password. Never write a credential into the URL: name the "
     "variable holding the token in token_env"),
    ("/srv/git/dags.git", "repos.dags.url: is neither a URL (https://, ssh://, file://) nor "
                          "git's host:path form; a directory on this machine is a 'path'"),
    ("ftp://h.example/dags.git", "repos.dags.url: scheme 'ftp' is not one of https, http, "
                                 "ssh, file."),
    ("https:///dags.git", "repos.dags.url: a https URL needs a host."),
    ("'-uhttps://x/y'", "repos.dags.url: must not start with '-'."),
    ("file://host/srv/dags.git", "repos.dags.url: a file URL needs an absolute path and no "
                                 "host"),
])
def test_a_url_that_cannot_be_cloned_safely_is_refused_at_its_line(
        tmp_path: Path, url: str, said: str) -> None:
    found = problems(tmp_path, BASE.format(url=url))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / WHERE}:4: {said}"), found
    assert "s3cretvalue" not in found[0] or "holds a password" in found[0]


def test_path_and_url_exclude_each_other_and_one_is_needed(tmp_path: Path) -> None:
    both = BASE.format(url="https://h.example/a/b.git").replace(
        "    url:", "    path: repos/dags\n    url:")
    assert any(p.startswith(f"{tmp_path / WHERE}:3: repos.dags: give exactly one of path (a "
                            "checkout you keep on the runner) or url")
               for p in problems(tmp_path, both))
    neither = "\n".join(ln for ln in BASE.format(url="x").splitlines() if "url:" not in ln)
    assert any(p.startswith(f"{tmp_path / WHERE}:3: repos.dags: give exactly one of path")
               for p in problems(tmp_path, neither + "\n"))


def test_a_managed_repo_must_share_its_commits_and_live_here(tmp_path: Path) -> None:
    text = BASE.format(url="https://h.example/a/b.git").replace("    git: {mode: direct}\n",
                                                                "    runner: build\n")
    text = text.replace("repos:", "runners:\n  build: {host: build.example}\nrepos:")
    found = problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / WHERE}:6: repos.dags.url: a repo the tool clones "
                            "needs git.mode direct or pull-request") for p in found), found
    assert any(p.startswith(f"{tmp_path / WHERE}:6: repos.dags.url: a repo given by url is "
                            "cloned on this machine; its runner must be local") for p in found)


def test_token_env_is_https_only_a_name_and_set(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGS_TOKEN", raising=False)
    over_ssh = BASE.format(url="git@github.com:acme/dags.git").replace(
        "    git:", "    token_env: DAGS_TOKEN\n    git:")
    assert problems(tmp_path, over_ssh) == [
        f"{tmp_path / WHERE}:5: repos.dags.token_env: a token is only sent over https (http "
        "only to this machine). Over ssh the SSH agent (or ~/.ssh) supplies the key; remove "
        "token_env, or give an https url."]
    elsewhere = over_ssh.replace("git@github.com:acme/dags.git", "http://git.example/a.git")
    assert "a token is only sent over https" in problems(tmp_path, elsewhere)[0]
    unset = over_ssh.replace("git@github.com:acme/dags.git", "https://github.com/acme/dags")
    assert problems(tmp_path, unset) == [
        f"{tmp_path / WHERE}:4: repos.dags.token_env: environment variable DAGS_TOKEN is not "
        "set (or empty). Export the token in it (a CI secret), or remove token_env to use "
        "git's credential helper."]
    bad = unset.replace("DAGS_TOKEN", "$DAGS")
    assert problems(tmp_path, bad)[0].startswith(
        f"{tmp_path / WHERE}:5: repos.dags.token_env: '$DAGS' is not an environment variable "
        "name.")
    on_path = BASE.replace("    url: {url}", "    path: .\n    directory: x").format(url="")
    assert any(": repos.dags.directory: only applies to a repo given by url." in p
               for p in problems(tmp_path, on_path))


def test_the_token_joins_the_redaction_rule_at_load(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A name that does not say "token": the key, not the variable's name, makes it secret.
    monkeypatch.setenv("FLEET_GIT_AUTH", "glpat-abcdefghijklmnop")
    text = BASE.format(url="https://gitlab.example/acme/dags.git").replace(
        "    git:", "    token_env: FLEET_GIT_AUTH\n    git:")
    inventory = load_inventory(write(tmp_path, text))
    assert "glpat-abcdefghijklmnop" in configured_secrets(inventory)
    from upgrade.model.redact import Redactor

    assert Redactor()("fatal: glpat-abcdefghijklmnop refused") == "fatal: *** refused"
