#!/bin/sh
# Create .venv and install Insyn into it, fast and with visible progress. Used by `make demo` (runtime
# dependencies only) and `make test` (with the dev extra, which adds the sklearn and dask extras).
#
#   scripts/setup-env.sh run|dev|python    (python: print the interpreter .venv would be made with)
#
# 1. uv (from PyPI) does the work: a uv already on PATH, or one installed with pip into .venv-uv/
#    (pip install --target; or a small bootstrap venv when this Python has no pip).
# 2. uv venv .venv, then uv pip install -e '.[extra]' (uv resolves from PyPI; it does not read pip's
#    config files, so a local index or constraints file configured for pip does not apply to it).
# 3. When uv cannot be had (no network to PyPI for it, an unsupported platform), the same install
#    with python -m venv and pip.
#
# 4. Bytecode is compiled at install (uv --compile-bytecode; pip does it by default) and for Insyn's
#    own modules on every call: where PYTHONDONTWRITEBYTECODE is set, as in some sandboxes and
#    containers, Python never writes .pyc files itself and would compile pandas, pyarrow and the
#    rest from source at every start (the 20,000-case demo took 3.9 s instead of 2.2 s).
#
# 5. The interpreter is $PYTHON when it is set. Otherwise it is the fastest Python >= 3.11 among python3,
#    python3.11 to python3.14 on PATH and python3 in /usr/bin and /usr/local/bin, timed on a short loop of
#    Python code (scripts/python-speed.py). Builds differ: a distribution's build (optimised with profiles
#    and at link time) ran Python code about 20 % faster here than a source build without
#    --enable-optimizations (pyenv's default), and the 1,000,000-case audit about 5 % faster.
#
# A stamp per level in .venv/ (newer than pyproject.toml) makes a second call a no-op apart from
# compiling Insyn's changed modules; the dev level satisfies the run level.
set -eu

LEVEL="${1:-run}"
VENV=".venv"
UVDIR=".venv-uv"
case "$LEVEL" in
    run) TARGET="." ;;
    dev) TARGET=".[dev]" ;;
    python) TARGET="" ;;  # only print the interpreter .venv would be made with
    *) echo "setup-env: the level must be run, dev or python. Got '$LEVEL'." >&2; exit 2 ;;
esac

# the fastest Python >= 3.11 that can make a virtual environment, by a short timing of each (see 5.)
choose_python() {
    best=""; best_s=""; seen=""
    for cand in python3 python3.11 python3.12 python3.13 python3.14 /usr/bin/python3 /usr/local/bin/python3; do
        command -v "$cand" >/dev/null 2>&1 || continue
        out=$("$cand" scripts/python-speed.py 2>/dev/null) || continue
        out=$(printf '%s\n' "$out" | tail -n 1)  # the probe's own line, after anything a site hook printed
        real=${out#* }; secs=${out%% *}
        case " $seen " in *" $real "*) continue ;; esac
        seen="$seen $real"
        if [ -z "$best" ] || awk -v a="$secs" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best="$real"; best_s="$secs"
        fi
    done
    [ -n "$best" ] && echo "$best" || echo python3
}
if [ "$LEVEL" = python ]; then
    echo "${PYTHON:-$(choose_python)}"
    exit 0
fi

fresh() { [ -f "$1" ] && [ "$1" -nt pyproject.toml ]; }
# only changed modules are compiled; a module that does not compile is reported when it is imported
compile_own() { "$VENV/bin/python" -m compileall audit >/dev/null 2>&1 || true; }
if fresh "$VENV/.installed-dev" || { [ "$LEVEL" = run ] && fresh "$VENV/.installed-run"; }; then
    compile_own
    exit 0
fi

step() { printf '==> %s\n' "$*"; }
START=$(date +%s)
PYTHON="${PYTHON:-$(choose_python)}"  # chosen only when .venv is to be made or filled

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
        step "[2/3] creating $VENV with $("$UV" --version) on $PYTHON"
        "$UV" venv --seed --python "$PYTHON" "$VENV"
    fi
    step "[3/3] installing Insyn ($TARGET) with uv"
    "$UV" pip install --compile-bytecode --python "$VENV/bin/python" -e "$TARGET"
else
    step "uv is not available; installing with pip instead (slower)"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$TARGET"
fi

compile_own
touch "$VENV/.installed-$LEVEL"
step "environment ready in $(( $(date +%s) - START )) s"
