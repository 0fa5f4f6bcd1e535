"""`invoke render`: write, commit, push; refuse dirty or mid-rebase repos; idempotent."""

from __future__ import annotations

import subprocess

from support import SampleFleet

LIMIT = ("--limit", "sales-etl,marketing-dbt,finance-reports")


def test_render_writes_only_dockerfiles(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("render", "--offline", *LIMIT)
    assert out.returncode == 0, out.stderr
    assert sample_fleet.git("sales-etl", "status", "--porcelain") == " M Dockerfile\n"
    assert (sample_fleet.repo("sales-etl") / "Dockerfile").read_text() == (
        "FROM quay.io/astronomer/astro-runtime:13.9.0\n")
    # Byte for byte: CRLF survives, only the version characters change.
    crlf = (sample_fleet.repo("finance-reports") / "Dockerfile").read_bytes()
    assert b"astro-runtime:13.9.0-python-3.12-base AS stage1\r\n" in crlf
    assert crlf.count(b"\r\n") == crlf.count(b"\n")


def test_render_commit_makes_one_commit_per_repo_on_a_branch(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("render", "--offline", "--commit", *LIMIT)
    assert out.returncode == 0, out.stderr
    for repo, old in (("sales-etl", "12.1.0"), ("marketing-dbt", "12.2.0")):
        assert sample_fleet.git(repo, "branch", "--show-current") == "runtime-upgrade/13.9.0\n"
        log = sample_fleet.git(repo, "log", "--format=%s", "main..HEAD")
        assert log == f"Upgrade Astro Runtime {old} → 13.9.0\n"
        assert sample_fleet.git(repo, "show", "--name-only", "--format=", "HEAD") == "Dockerfile\n"
        assert sample_fleet.git(repo, "status", "--porcelain") == ""
        # The user's checkout moved to another branch: said, never silent.
        assert (f"{repo}: switched {sample_fleet.repo(repo)} from main to branch "
                "runtime-upgrade/13.9.0; `git switch main` goes back") in out.stdout


def test_render_twice_changes_nothing_the_second_time(sample_fleet: SampleFleet) -> None:
    assert sample_fleet.invoke("render", "--offline", "--commit", *LIMIT).returncode == 0
    heads = {r: sample_fleet.git(r, "rev-parse", "HEAD") for r in ("sales-etl", "marketing-dbt")}
    again = sample_fleet.invoke("render", "--offline", "--commit", *LIMIT)
    assert again.returncode == 0, again.stderr
    assert "Nothing to render" in again.stdout
    assert {r: sample_fleet.git(r, "rev-parse", "HEAD") for r in heads} == heads


def test_dirty_repo_is_refused_and_nothing_is_written(sample_fleet: SampleFleet) -> None:
    (sample_fleet.repo("marketing-dbt") / "requirements.txt").write_text("pandas\n")
    out = sample_fleet.invoke("render", "--offline", "--commit", *LIMIT)
    assert out.returncode == 2
    assert "marketing-dbt" in out.stderr and "requirements.txt" in out.stderr
    assert "uncommitted changes" in out.stderr
    # All repos are checked before any is written: sales-etl was not touched either.
    assert sample_fleet.git("sales-etl", "status", "--porcelain") == ""
    assert sample_fleet.git("sales-etl", "branch", "--show-current") == "main\n"


def test_repo_in_the_middle_of_a_rebase_is_refused(sample_fleet: SampleFleet) -> None:
    repo = "sales-etl"
    sample_fleet.git(repo, "switch", "-q", "-c", "feature")
    (sample_fleet.repo(repo) / "requirements.txt").write_text("feature\n")
    sample_fleet.git(repo, "commit", "-qam", "feature")
    sample_fleet.git(repo, "switch", "-q", "main")
    (sample_fleet.repo(repo) / "requirements.txt").write_text("main\n")
    sample_fleet.git(repo, "commit", "-qam", "main")
    sample_fleet.git(repo, "switch", "-q", "feature")
    rebase = subprocess.run(["git", "rebase", "main"], cwd=sample_fleet.repo(repo), capture_output=True)
    assert rebase.returncode != 0  # stopped on the conflict
    out = sample_fleet.invoke("render", "--offline", "--limit", repo)
    assert out.returncode == 2
    assert "in the middle of a rebase" in out.stderr and "git rebase --abort" in out.stderr
    assert b"12.1.0" in (sample_fleet.repo(repo) / "Dockerfile").read_bytes()


def test_push_to_a_bare_remote(sample_fleet: SampleFleet, tmp_path) -> None:
    # Each sample repo's origin is a bare repository beside the checkouts (file://).
    remote = sample_fleet.root / "demo-fleet" / ".remotes" / "sales-etl.git"
    assert sample_fleet.git("sales-etl", "remote", "get-url", "origin").strip() == remote.as_uri()
    out = sample_fleet.invoke("render", "--offline", "--push", "--limit", "sales-etl")
    assert out.returncode == 0, out.stderr
    assert "pushed" in out.stdout
    refs = subprocess.run(["git", "ls-remote", str(remote)], capture_output=True, text=True).stdout
    assert "refs/heads/runtime-upgrade/13.9.0" in refs


def test_refused_deployments_are_reported_and_their_repo_left_alone(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("render", "--offline", "--limit", "partner-feeds,sales-etl")
    assert out.returncode == 3
    assert "refuse: partner-feeds-prod" in out.stderr
    assert sample_fleet.git("partner-feeds", "status", "--porcelain") == ""
    assert sample_fleet.git("sales-etl", "status", "--porcelain") == " M Dockerfile\n"


def test_render_changes_only_version_characters_on_disk(sample_fleet: SampleFleet) -> None:
    """After `render`, each Dockerfile on disk differs from before only in the characters of
    the version (issue 14: checked on disk, byte for byte, not only in memory)."""
    import difflib
    import re

    from upgrade.config.inventory_loader import load_inventory

    inventory = load_inventory(sample_fleet.inventory, check_repos=False)
    files = {name: repo.path / repo.dockerfile for name, repo in inventory.repos.items()
             if repo.template is None}
    before = {name: path.read_bytes() for name, path in files.items()}
    out = sample_fleet.invoke("render", "--offline")
    assert out.returncode in (0, 3), out.stdout + out.stderr  # some are refused by design
    version = re.compile(rb"[0-9.]*(-[0-9]+)?")
    changed = 0
    for name, path in files.items():
        after = path.read_bytes()
        if after == before[name]:
            continue
        changed += 1
        if b"astrocrpublic.azurecr.io/runtime:" in after and \
                b"astrocrpublic.azurecr.io/runtime:" not in before[name]:
            continue  # an Airflow 2 -> 3 migration changes the repository as well
        matcher = difflib.SequenceMatcher(None, before[name], after, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            old, new = before[name][i1:i2], after[j1:j2]
            assert version.fullmatch(old) and version.fullmatch(new), (name, op, old, new)
    assert changed >= 5
