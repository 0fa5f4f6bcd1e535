#!/usr/bin/env bash
# Cached virtualenvs with real Apache Airflow for the contract tests (tests/contract/).
#
#   scripts/airflow-test-server.sh install VERSION...  create the venv of each VERSION from its
#                                                      lock file, unless it is already there
#   scripts/airflow-test-server.sh path VERSION        print the venv's directory (exit 1 when
#                                                      it is not installed)
#   scripts/airflow-test-server.sh lock VERSION        re-resolve VERSION's lock from PyPI
#                                                      (maintainers only; see below)
#
# Each venv is installed with `pip install --no-deps` from tests/contract/requirements-VERSION.lock,
# the whole closure pinned, so every machine runs the same Airflow. The venvs live outside the
# repository, in $AIRFLOW_TEST_CACHE (default ~/.cache/astro-fleet-upgrade/airflow), one
# directory per version, Python and lock content: changing the lock makes a new venv.
#
# Starting and stopping the servers is tests/contract/server.py's job (on 127.0.0.1, free ports,
# processes stopped by pid).
#
# `lock` resolves `apache-airflow==VERSION` with tests/contract/constraints-VERSION.txt (when it
# exists) in a scratch venv and freezes the result. Airflow's own constraint files cannot be
# fetched here, so the constraints hold the few pins the release needs: Airflow 3.0.6's API
# server answers every request 500 ("Issuer (iss) must be a string") with PyJWT 2.11+, and its
# Execution API refuses task bodies (422) with the newest FastAPI/Cadwyn stack.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${AIRFLOW_TEST_PYTHON:-python3}
CACHE=${AIRFLOW_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/astro-fleet-upgrade/airflow}

die() { echo "airflow-test-server: $*" >&2; exit 1; }

lock_file() { echo "$ROOT/tests/contract/requirements-$1.lock"; }

venv_dir() {
    local version=$1 lock key
    lock=$(lock_file "$version")
    [ -f "$lock" ] || die "no lock file for Airflow $version ($lock)."
    # The venv depends on the interpreter and on every pin: both are in its name.
    key=$({ "$PYTHON" -c 'import sys; print(sys.version)'; cat "$lock"; } | sha256sum | cut -c1-12)
    echo "$CACHE/$version-$key"
}

install_one() {
    local version=$1 dir started
    dir=$(venv_dir "$version")
    [ -f "$dir/.installed" ] && { echo "$dir"; return 0; }
    mkdir -p "$CACHE"
    # Two pytest workers (or two make targets) may both get here: one installs, one waits.
    exec 9>"$dir.lock"
    flock 9
    if [ ! -f "$dir/.installed" ]; then
        started=$(date +%s.%N)
        rm -rf "$dir"
        "$PYTHON" -m venv "$dir"
        local log
        log=$(mktemp)
        if ! "$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps \
                -r "$(lock_file "$version")" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "pip could not install Airflow $version from its lock file."
        fi
        rm -f "$log"
        "$dir/bin/python" -c 'import airflow' 2>/dev/null \
            || die "Airflow $version was installed in $dir but does not import."
        python3 - "$started" "$version" <<'PY' >&2
import sys, time
print(f"airflow-test-server: installed Airflow {sys.argv[2]} in "
      f"{time.time() - float(sys.argv[1]):.0f} s")
PY
        touch "$dir/.installed"
    fi
    exec 9>&-
    echo "$dir"
}

lock() {
    local version=$1 scratch constraints
    scratch=$(mktemp -d)
    constraints="$ROOT/tests/contract/constraints-$version.txt"
    "$PYTHON" -m venv "$scratch/venv"
    local args=("apache-airflow==$version")
    [ -f "$constraints" ] && args+=(-c "$constraints")
    "$scratch/venv/bin/pip" install --quiet --disable-pip-version-check "${args[@]}"
    "$scratch/venv/bin/pip" check
    {
        echo "# apache-airflow==$version and its whole closure, for the contract tests (tests/contract/)."
        echo "# Resolved from PyPI by \`scripts/airflow-test-server.sh lock $version\` with"
        echo "# $("$PYTHON" -c 'import platform; print("Python", platform.python_version())'); installed with --no-deps."
        "$scratch/venv/bin/pip" freeze --all | grep -v -i -E '^(pip|setuptools|wheel)=='
    } >"$(lock_file "$version")"
    rm -rf "$scratch"
    echo "wrote $(lock_file "$version")"
}

case "${1:-}" in
    install)
        shift
        [ $# -ge 1 ] || die "usage: $0 install VERSION..."
        for v in "$@"; do install_one "$v"; done ;;
    path)
        [ $# -eq 2 ] || die "usage: $0 path VERSION"
        dir=$(venv_dir "$2")
        [ -f "$dir/.installed" ] || die "Airflow $2 is not installed: run $0 install $2"
        echo "$dir" ;;
    lock)
        [ $# -eq 2 ] || die "usage: $0 lock VERSION"
        lock "$2" ;;
    *) die "usage: $0 install VERSION... | path VERSION | lock VERSION" ;;
esac
