#!/bin/sh
# Create .venv and install Insyn into it, fast and with visible progress. Used by `make demo` (runtime
# dependencies only) and `make test` (with the dev extra, which adds the sklearn and dask extras).
#
#   scripts/setup-env.sh run|dev
#
# 1. uv (from PyPI) does the work: a uv already on PATH, or one installed with pip into .venv-uv/
#    (pip install --target; or a small bootstrap venv when this Python has no pip).
# 2. uv venv .venv, then uv pip install -e '.[extra]' (uv resolves from PyPI; it does not read pip's
#    config files, so a local index or constraints file configured for pip does not apply to it).
# 3. When uv cannot be had (no network to PyPI for it, an unsupported platform), the same install
#    with python -m venv and pip.
#
# A stamp per level in .venv/ (newer than pyproject.toml) makes a second call a no-op; the dev
# level satisfies the run level.
set -eu

LEVEL="${1:-run}"
PYTHON="${PYTHON:-python3}"
VENV=".venv"
UVDIR=".venv-uv"
case "$LEVEL" in
    run) TARGET="." ;;
    dev) TARGET=".[dev]" ;;
    *) echo "setup-env: the level must be run or dev. Got '$LEVEL'." >&2; exit 2 ;;
esac

fresh() { [ -f "$1" ] && [ "$1" -nt pyproject.toml ]; }
if fresh "$VENV/.installed-dev" || { [ "$LEVEL" = run ] && fresh "$VENV/.installed-run"; }; then
    exit 0
fi

step() { printf '==> %s\n' "$*"; }
START=$(date +%s)

find_uv() {
    if command -v uv >/dev/null 2>&1; then command -v uv; return 0; fi
    if [ -x "$UVDIR/bin/uv" ]; then echo "$UVDIR/bin/uv"; return 0; fi
    step "[1/3] getting uv from PyPI (into $UVDIR/)" >&2
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        "$PYTHON" -m pip install --disable-pip-version-check --progress-bar on --target "$UVDIR" uv >&2 \
            || return 1
    else
        "$PYTHON" -m venv "$UVDIR/bootstrap" >&2 && "$UVDIR/bootstrap/bin/pip" install uv >&2 || return 1
        mkdir -p "$UVDIR/bin" && ln -sf "$(pwd)/$UVDIR/bootstrap/bin/uv" "$UVDIR/bin/uv"
    fi
    [ -x "$UVDIR/bin/uv" ] && echo "$UVDIR/bin/uv"
}

if UV=$(find_uv); then
    export UV_PYTHON_DOWNLOADS=never  # use $PYTHON, never download an interpreter
    if [ ! -x "$VENV/bin/python" ]; then
        step "[2/3] creating $VENV with $("$UV" --version)"
        "$UV" venv --seed --python "$PYTHON" "$VENV"
    fi
    step "[3/3] installing Insyn ($TARGET) with uv"
    "$UV" pip install --python "$VENV/bin/python" -e "$TARGET"
else
    step "uv is not available; installing with pip instead (slower)"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$TARGET"
fi

touch "$VENV/.installed-$LEVEL"
step "environment ready in $(( $(date +%s) - START )) s"
