#!/usr/bin/env bash
# Headless Chromium for the browser tests of the HTML report (tests/browser/) and the
# README's screenshot.
#
#   scripts/chromium.sh install               install Debian's chromium if it is missing (apt-get)
#   scripts/chromium.sh path                  print the browser's path
#   scripts/chromium.sh screenshot FILE.html OUT.png [WIDTHxHEIGHT]
#                                             a PNG of the page's top (default 1280x900)
#
# The browser runs headless with a throw-away profile and no network of its own to use:
# the report is one self-contained file.
set -euo pipefail

LOCK=${TMPDIR:-/tmp}/chromium-install.lock

die() { echo "chromium: $*" >&2; exit 1; }

find_chromium() {
    local name
    for name in "${CHROMIUM:-}" chromium chromium-browser; do
        [ -n "$name" ] || continue
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    done
    return 1
}

install() {
    find_chromium >/dev/null && return 0
    [ "$(id -u)" = 0 ] || die "chromium is not installed and only root can install it: run 'apt-get install chromium' as root."
    command -v apt-get >/dev/null || die "chromium is not installed and apt-get is not available; install Chromium."
    # Two pytest workers (or make targets) may both get here: one installs, the other waits.
    exec 9>"$LOCK"
    flock 9
    find_chromium >/dev/null && return 0
    export DEBIAN_FRONTEND=noninteractive
    local log rc=0
    log=$(mktemp)
    { apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 chromium fonts-dejavu-core
    } >"$log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then cat "$log" >&2; rm -f "$log"; die "apt-get install chromium failed."; fi
    rm -f "$log"
    find_chromium >/dev/null || die "chromium was installed but no chromium binary was found."
}

screenshot() {
    local page=$1 out=$2 size=${3:-1280x900} browser profile
    browser=$(find_chromium) || die "chromium is not installed: run '$0 install' (as root)."
    profile=$(mktemp -d)
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$profile" --window-size="${size/x/,}" \
        --screenshot="$out" "file://$(realpath "$page")" >/dev/null 2>&1 || {
        rm -rf "$profile"; die "the screenshot of $page failed."; }
    rm -rf "$profile"
}

case "${1:-}" in
    install) install ;;
    path) find_chromium || die "chromium is not installed: run '$0 install' (as root)." ;;
    screenshot) [ $# -ge 3 ] || die "usage: $0 screenshot FILE.html OUT.png [WIDTHxHEIGHT]"
                screenshot "$2" "$3" "${4:-}" ;;
    *) die "usage: $0 install | path | screenshot FILE.html OUT.png [WIDTHxHEIGHT]" ;;
esac
