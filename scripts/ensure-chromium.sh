#!/bin/sh
# Install Debian's Chromium for the browser test (tests/test_report_browser.py) when it is missing.
# Used by `make test`. Does nothing when Chromium is already there. When it cannot install
# Chromium it says why and exits 0, so that the browser test is skipped with that reason;
# under CI=true it exits 1 instead, because CI must run the browser test.
set -eu

give_up() {
    echo "ensure-chromium: $1" >&2
    case "${CI:-}" in
        1 | true | TRUE | yes) exit 1 ;;
        *) echo "ensure-chromium: the browser test will be skipped." >&2; exit 0 ;;
    esac
}

for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
        echo "ensure-chromium: found $(command -v "$candidate")"
        exit 0
    fi
done

command -v apt-get >/dev/null 2>&1 || give_up "Chromium is missing and apt-get is not available; install it by hand."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || give_up "Chromium is missing and this user cannot install packages (not root, no sudo)."
    SUDO="sudo"
fi

echo "ensure-chromium: installing Debian's chromium package"
if $SUDO apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
    && command -v chromium >/dev/null 2>&1; then
    echo "ensure-chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
    exit 0
fi
give_up "apt-get could not install chromium."
