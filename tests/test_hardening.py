"""The bad-input corpus: one table of user mistakes and faults, each run through the ``insyn`` command line.

Every case asserts the exit code (2 for a user's mistake, never 3), that no
traceback is printed, the words of the message, that no personnummer reaches
any stream or artifact, and, when a run folder was written, that every input
case is accounted for. Most cases run in-process through
:func:`audit.cli.main` with captured streams; a handful also as real
subprocesses, which start together with the first case and run beside the
in-process ones (their start-up, importing Insyn, dominates their time).

Personnummer-shaped strings are built at run time (none is written in a file
of this repository); they are made-up numbers of the right shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_servers import InsynServer  # noqa: E402

from audit._privacy import mask  # noqa: E402
from audit.cli import main  # noqa: E402
from audit.synth import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N = 40


def _pnr(century: bool, sep: str, coordination: bool = False) -> str:
    """A made-up personnummer in one of its written forms."""
    day = 61 if coordination else 15
    body = f"850{6}{day:02d}"
    return f"{'19' if century else ''}{body}{sep}{'%04d' % 2387}"


PNRS = {
    "12-digit": _pnr(True, ""),
    "12-dash": _pnr(True, "-"),
    "10-digit": _pnr(False, ""),
    "10-dash": _pnr(False, "-"),
    "10-plus": _pnr(False, "+"),
    "coordination": _pnr(True, "-", coordination=True),
}


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """A small synthetic case frame (written as CSV by each case)."""
    return generate(ROOT / "datasets/sweden/population-2026.yaml", n=N, seed=7)


@dataclass
class Case:
    """One bad input: how to build it and what must come out."""

    name: str
    code: int | tuple[int, ...]
    words: tuple[str, ...] = ()
    build: Callable[[Path, pd.DataFrame], list[str]] | None = None
    secrets: tuple[str, ...] = ()
    check: Callable[[Path | None, str, str], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# builders


def _base_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "corpus",
        "seed": 1,
        "population": {"file": "pop.csv"},
        "sensitive_features": ["sex"],
        "engine": {"kind": "reference"},
        "truth": {"reference": True},
        "statistics": {"bootstrap": 0, "min_group_size": 5},
    }
    for key, value in over.items():
        if value is None:
            spec.pop(key, None)
        elif isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {k: v for k, v in {**spec[key], **value}.items() if v is not None}
        else:
            spec[key] = value
    return spec


def _write_run(tmp: Path, frame: pd.DataFrame, spec: dict[str, Any] | str, *, data: str = "pop.csv",
               extra: tuple[str, ...] = ("--json",)) -> list[str]:
    if data.endswith(".csv"):
        frame.to_csv(tmp / data, index=False)
    elif data.endswith(".xlsx"):
        frame.to_excel(tmp / data, index=False, sheet_name="cases")
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    (tmp / "spec.yaml").write_text(text, encoding="utf-8")
    return ["run", str(tmp / "spec.yaml"), "--out", str(tmp / "out"), *extra]


def spec_text(text: str) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run of a spec written as raw YAML (population pop.csv)."""
    return lambda tmp, pop: _write_run(tmp, pop, textwrap.dedent(text))


def spec_over(**over: Any) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run of the base spec with some keys replaced."""
    return lambda tmp, pop: _write_run(tmp, pop, _base_spec(**over))


def baseline(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run on changed data whose engine (the reference) may err for every case: the baseline's errors count."""
    return data_change(change, engine={"kind": "reference", "error_budget": 1.0})


def data_change(change: Callable[[pd.DataFrame], pd.DataFrame], **over: Any) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run of the base spec on changed data."""
    return lambda tmp, pop: _write_run(tmp, change(pop.copy()), _base_spec(**over))


def raw_csv(text: str, **over: Any) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run on a hand-written CSV file."""
    def build(tmp: Path, pop: pd.DataFrame) -> list[str]:
        args = _write_run(tmp, pop, _base_spec(**over))
        (tmp / "pop.csv").write_text(text, encoding="utf-8")
        return args
    return build


def engine(code: str, *, module: str, budget: float = 1.0, extra: tuple[str, ...] = ("--json",),
           keys: dict[str, Any] | None = None, **over: Any) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run of a Python engine written in a module next to the spec (``keys``: further engine keys)."""
    def build(tmp: Path, pop: pd.DataFrame) -> list[str]:
        (tmp / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
        spec = _base_spec(engine={"kind": "python", "target": f"{module}:decide", "error_budget": budget,
                                  **(keys or {})}, **over)
        return _write_run(tmp, pop, spec, extra=extra)
    return build


def subprocess_engine(code: str, *, timeout: float | None = None, budget: float = 1.0) -> Callable[..., list[str]]:
    """A run of a subprocess engine (a Python script)."""
    def build(tmp: Path, pop: pd.DataFrame) -> list[str]:
        (tmp / "prog.py").write_text(textwrap.dedent(code), encoding="utf-8")
        eng: dict[str, Any] = {"kind": "subprocess", "command": ["{python}", "prog.py"], "error_budget": budget}
        if timeout is not None:
            eng["timeout_s"] = timeout
        return _write_run(tmp, pop, _base_spec(engine=eng))
    return build


_SERVERS: list[InsynServer] = []
"""HTTP engines started by a case; the test stops them."""


class LeakyServer(InsynServer):
    """An HTTP engine whose error body names a person."""

    def __init__(self, text: str, status: int) -> None:
        super().__init__()
        self.text, self.status = text, status

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, int | None]:
        return self.status, {"message": f"no such person {self.text}"}, None


def http_engine(text: str, status: int = 422, budget: float = 1.0) -> Callable[[Path, pd.DataFrame], list[str]]:
    """A run of an HTTP engine that answers every batch with an error body holding ``text``."""
    def build(tmp: Path, pop: pd.DataFrame) -> list[str]:
        server = LeakyServer(text, status).__enter__()
        _SERVERS.append(server)
        eng = {"kind": "http", "url": server.url, "retries": 0, "timeout_s": 5, "error_budget": budget}
        return _write_run(tmp, pop, _base_spec(engine=eng))
    return build


def cli(*args: str, files: dict[str, str] | None = None) -> Callable[[Path, pd.DataFrame], list[str]]:
    """Any command line; ``{tmp}`` in an argument is the case's folder."""
    def build(tmp: Path, pop: pd.DataFrame) -> list[str]:
        pop.to_csv(tmp / "pop.csv", index=False)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        return [a.replace("{tmp}", str(tmp)) for a in args]
    return build


# ---------------------------------------------------------------------------
# checks of a finished run


def statuses(run: Path | None) -> pd.DataFrame:
    assert run is not None, "expected a run folder"
    return pd.read_parquet(run / "decisions.parquet")


def errors_with(words: str, count: int | None = None) -> Callable[[Path | None, str, str], None]:
    """The run marked cases ``error`` with a reason holding ``words``."""
    def check(run: Path | None, out: str, err: str) -> None:
        dec = statuses(run)
        hit = (dec["status"] == "error") & dec["status_reason"].str.contains(words, regex=False)
        assert hit.any(), dec[["status", "status_reason"]].drop_duplicates().to_string()
        if count is not None:
            assert int(hit.sum()) == count
    return check


def all_ok(run: Path | None, out: str, err: str) -> None:
    assert (statuses(run)["status"] == "ok").all()


def json_stdout(run: Path | None, out: str, err: str) -> None:
    summary = json.loads(out)  # an engine's prints never corrupt --json
    assert summary["run_dir"]


def csv_defused(run: Path | None, out: str, err: str) -> None:
    assert run is not None
    text = (run / "metrics.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in frame.columns:
        for cell in [col, *frame[col]]:
            if cell and cell[0] in "=+-@\t\r":
                assert re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|-?inf", cell), (col, cell)
    assert "'=HYPERLINK" in text


def ids_kept(run: Path | None, out: str, err: str) -> None:
    dec = statuses(run)
    assert dec["case_id"].nunique() == N
    assert dec["case_id"].str.fullmatch(r"\d{20}").all()


# ---------------------------------------------------------------------------
# the corpus

def _alias_bomb(levels: int, width: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


def _nested(depth: int) -> str:
    return "name: x\ndescription: " + "[" * depth + "]" * depth + "\n"


DUPLICATE_KEYS = {
    "top-name": "name: a\nname: b\npopulation: {file: pop.csv}\nengine: {kind: reference}\nsensitive_features: [sex]\n",
    "population-file": "name: a\npopulation:\n  file: pop.csv\n  file: other.csv\nengine: {kind: reference}\n"
                       "sensitive_features: [sex]\n",
    "engine-kind": "name: a\npopulation: {file: pop.csv}\nengine:\n  kind: reference\n  kind: rules\n"
                   "sensitive_features: [sex]\n",
    "threshold": "name: a\npopulation: {file: pop.csv}\nengine: {kind: reference}\nsensitive_features: [sex]\n"
                 "thresholds:\n  - {metric: grant_rate, ratio_min: 0.8, ratio_min: 0.9}\n",
    "statistics": "name: a\npopulation: {file: pop.csv}\nengine: {kind: reference}\nsensitive_features: [sex]\n"
                  "statistics:\n  alpha: 0.05\n  alpha: 0.5\n",
    "seed": "name: a\nseed: 1\nseed: 2\npopulation: {file: pop.csv}\nengine: {kind: reference}\n"
            "sensitive_features: [sex]\n",
}

CASES: list[Case] = []

# -- family 1: the spec (YAML and its rules) -------------------------------------------------------------------
for key, text in DUPLICATE_KEYS.items():
    CASES.append(Case(f"yaml-duplicate-{key}", 2, ("appears twice",), spec_text(text)))
for levels, width in ((6, 9), (8, 9), (10, 10), (20, 4), (30, 2)):
    CASES.append(Case(f"yaml-alias-bomb-{levels}x{width}", 2, ("alias",), spec_text(_alias_bomb(levels, width))))
for depth in (80, 500, 5000):
    CASES.append(Case(f"yaml-depth-{depth}", 2, ("nest",), spec_text(_nested(depth))))
for kind in ("ratio", "difference", "value"):
    CASES.append(Case(f"threshold-{kind}-min-above-max", 2, (f"{kind}_min", f"{kind}_max"),
                      spec_over(thresholds=[{"metric": "grant_rate", f"{kind}_min": 0.9, f"{kind}_max": 0.5}])))
CASES += [
    Case("threshold-negative-ratio", 2, ("ratio_min",),
         spec_over(thresholds=[{"metric": "grant_rate", "ratio_min": -1}])),
    Case("threshold-no-bound", 2, ("at least one bound",), spec_over(thresholds=[{"metric": "grant_rate"}])),
]
for n in (10**12, 10**8, 0, -5, "abc", 2.5):
    CASES.append(Case(f"synthetic-n-{n}", 2, ("population.n",),
                      spec_over(population={"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"),
                                            "n": n, "file": None})))
CASES += [
    Case("spec-unknown-top-key", 2, ("colour",), spec_over(colour="red")),
    Case("spec-unknown-engine-kind", 2, ("engine.kind",), spec_over(engine={"kind": "rpa"})),
    Case("spec-min-group-size-0", 2, ("min_group_size",), spec_over(statistics={"min_group_size": 0})),
    Case("spec-alpha-2", 2, ("alpha",), spec_over(statistics={"alpha": 2})),
    Case("spec-correction-unknown", 2, ("correction",), spec_over(statistics={"correction": "magic"})),
    Case("spec-name-list", 2, ("name",), spec_over(name=["a", "b"])),
    Case("spec-sensitive-not-a-column", 2, ("shoe_size",), spec_over(sensitive_features=["shoe_size"])),
    Case("spec-error-budget-2", 2, ("error_budget",), spec_over(engine={"kind": "reference", "error_budget": 2})),
    Case("spec-report-language", 2, ("language",), spec_over(report={"language": "fi"})),
    Case("spec-empty", 2, ("empty",), spec_text("\n")),
    Case("spec-a-list", 2, ("mapping",), spec_text("- a\n- b\n")),
    Case("spec-bad-yaml", 2, ("not valid YAML",), spec_text("name: [unclosed\n")),
    Case("spec-tab-indent", 2, ("not valid YAML",), spec_text("name: a\npopulation:\n\tfile: pop.csv\n")),
    Case("spec-missing-file", 2, ("no such spec file",), cli("run", "{tmp}/nope.yaml")),
    Case("spec-is-a-folder", 2, ("no such spec file",), cli("run", "{tmp}")),
    Case("spec-not-utf8", 2, ("UTF-8",),
         lambda tmp, pop: (tmp.joinpath("latin.yaml").write_bytes("name: sjölund\n".encode("latin-1")),
                           ["run", str(tmp / "latin.yaml")])[1]),
    Case("spec-population-file-missing", 2, ("no such file",), spec_over(population={"file": "missing.csv"})),
    Case("spec-population-two-sources", 2, ("population",),
         spec_over(population={"file": "pop.csv", "sql": "select 1"})),
    Case("spec-thresholds-not-list", 2, ("thresholds",), spec_over(thresholds={"metric": "grant_rate"})),
    Case("spec-python-engine-no-target", 2, ("target",), spec_over(engine={"kind": "python"})),
    Case("spec-python-engine-bad-target", 2, ("package.module:attr",),
         spec_over(engine={"kind": "python", "target": "nocolon"})),
    Case("spec-python-engine-missing-module", 2, ("no module",),
         spec_over(engine={"kind": "python", "target": "not_there_at_all:decide"})),
    Case("spec-rules-engine-missing-file", 2, ("no such rule file",),
         spec_over(engine={"kind": "rules", "path": "missing-rules.yaml"})),
    Case("spec-suite-missing", 2, ("does not exist",),
         spec_over(checks={"intake": {"suites": ["missing-suite.yaml"], "policy": "fail"}})),
]

# -- family 2: the data (information-losing coercions, headers, mapping) -----------------------------------------
CASES += [
    Case("data-duplicated-header-csv", 2, ("appears twice", "rent"),
         raw_csv("case_id,sex,rent,rent\nc1,female,1,2\n")),
    Case("data-duplicated-header-after-strip", 2, ("appears twice", "sex"),
         raw_csv("case_id,sex, sex\nc1,female,male\n")),
    Case("data-rename-onto-existing", 2, ("rename", "already a column"),
         spec_over(population={"file": "pop.csv", "rename": {"channel": "sex"}})),
    Case("data-rename-two-onto-one", 2, ("rename", "another rename"),
         spec_over(population={"file": "pop.csv", "rename": {"channel": "via", "application_type": "via"}})),
    Case("data-rename-missing-column", 2, ("rename", "not in the data"),
         spec_over(population={"file": "pop.csv", "rename": {"Gender": "kon"}})),
    Case("data-bins-on-text", 2, ("not numbers", "channel"),
         spec_over(population={"file": "pop.csv", "derive": {
             "band": {"bins": {"column": "channel", "edges": [0, 1, 2], "labels": ["a", "b"]}}}})),
    Case("data-quantile-bins-on-text", 2, ("not numbers", "sex"),
         spec_over(population={"file": "pop.csv", "derive": {
             "band": {"quantile_bins": {"column": "sex", "q": [0, 0.5, 1], "labels": ["lo", "hi"]}}}})),
    Case("data-bins-on-mixed", 2, ("not numbers", "abc"),
         data_change(lambda f: f.assign(rent=f["rent"].astype(object).where(f.index != 3, "abc")),
                     population={"file": "pop.csv", "derive": {
                         "band": {"bins": {"column": "rent", "edges": [0, 5000, 1e9], "labels": ["lo", "hi"]}}}})),
    Case("data-derive-missing-column", 2, ("derive", "not in the data"),
         spec_over(population={"file": "pop.csv", "derive": {
             "band": {"bins": {"column": "nope", "edges": [0, 1], "labels": ["a"]}}}})),
    Case("data-case-id-duplicated", 2, ("duplicated",), data_change(lambda f: f.assign(case_id="same"))),
    Case("data-case-id-missing-column", 2, ("case_id",),
         spec_over(population={"file": "pop.csv", "case_id": "no_such_id"})),
    Case("data-empty-file", 2, ("pop.csv",), raw_csv("")),
    Case("data-unknown-suffix", 2, ("unknown file type",),
         lambda tmp, pop: (tmp.joinpath("pop.json").write_text("{}"),
                           _write_run(tmp, pop, _base_spec(population={"file": "pop.json"})))[1]),
    Case("data-file-too-large", 2, ("bytes", "INSYN_MAX_FILE_BYTES"), spec_over(),
         env={"INSYN_MAX_FILE_BYTES": "100"}),
    Case("data-20-digit-ids-stay-distinct", 0, (), data_change(
        lambda f: f.assign(case_id=[f"{10**19 + i * 7919:020d}" for i in range(len(f))])), check=ids_kept),
    Case("data-excel-duplicated-header", 2, ("appears twice",),
         lambda tmp, pop: _write_run(tmp, pop.rename(columns={"channel": "sex"}), _base_spec(
             population={"file": "pop.xlsx"}), data="pop.xlsx")),
]

# -- family 3: no silent acceptance at the law's baseline --------------------------------------------------------
CASES += [
    Case("baseline-missing-rent-column", (0, 1), (), baseline(lambda f: f.drop(columns=["rent"])),
         check=errors_with("rent: the column is missing", N)),
    Case("baseline-month-2099-06", (0, 1), (),
         baseline(lambda f: f.assign(benefit_month=f["benefit_month"].where(f.index != 2, "2099-06"))),
         check=errors_with("2099-06", 1)),
    Case("baseline-month-2026-13", (0, 1), (),
         baseline(lambda f: f.assign(benefit_month=f["benefit_month"].where(f.index != 4, "2026-13"))),
         check=errors_with("2026-13", 1)),
    Case("baseline-month-excel-date", (0, 1), (),
         baseline(lambda f: f.assign(benefit_month=f["benefit_month"].where(f.index != 6, "2026-06-01 00:00:00"))),
         check=errors_with("benefit_month", 1)),
    Case("baseline-seven-adults", (0, 1), (),
         baseline(lambda f: f.assign(adults=f["adults"].where(f.index != 5, 7))), check=errors_with("adults", 1)),
    Case("baseline-rent-abc", (0, 1), (),
         baseline(lambda f: f.assign(rent=f["rent"].astype(object).where(f.index != 8, "abc"))),
         check=errors_with("'abc' is not a number", 1)),
    Case("baseline-rent-negative", (0, 1), (),
         baseline(lambda f: f.assign(rent=f["rent"].where(f.index != 9, -100.0))), check=errors_with("negative", 1)),
    Case("baseline-rent-blank", (0, 1), (),
         baseline(lambda f: f.assign(rent=f["rent"].where(f.index != 10))), check=errors_with("missing", 1)),
    Case("baseline-child-ages-text", (0, 1), (),
         baseline(lambda f: f.assign(child_ages=f["child_ages"].where(f.index != 11, "four"))),
         check=errors_with("child_ages", 1)),
    Case("baseline-ok-control", (0, 1), (), baseline(lambda f: f), check=all_ok),
]

# -- family 4: engines cannot take the audit down -----------------------------------------------------------------
_FRAME = 'pd.DataFrame({"case_id": cases["case_id"], "outcome": "grant", "amount": 100.0, "reasons": ""})'
CASES += [
    Case("engine-sys-exit-0", 2, ("sys.exit(0)", "error budget"),
         engine("import sys\ndef decide(cases):\n    sys.exit(0)\n", module="eng_exit0", budget=0.0)),
    Case("engine-sys-exit-1-contained", 0, (),
         engine("import sys\ndef decide(cases):\n    sys.exit(1)\n", module="eng_exit1"),
         check=errors_with("sys.exit(1)", N)),
    Case("engine-keyboard-interrupt", 0, (),
         engine("def decide(cases):\n    raise KeyboardInterrupt\n", module="eng_kbd"),
         check=errors_with("KeyboardInterrupt", N)),
    Case("engine-exit-at-import", 2, ("SystemExit",),
         engine("import sys\nsys.exit(3)\ndef decide(cases):\n    pass\n", module="eng_exit_import")),
    Case("engine-prints-to-stdout", 0, (),
         engine(f"import pandas as pd\ndef decide(cases):\n    print('debug output')\n    return {_FRAME}\n",
                module="eng_print"), check=json_stdout),
    Case("engine-per-case-sys-exit", 0, (),
         engine("import sys\nfrom audit.engine import per_case\n@per_case\ndef decide(case):\n"
                "    if case['case_id'].endswith('3'):\n        sys.exit(0)\n"
                "    return {'outcome': 'grant', 'amount': 5.0}\n", module="eng_pc_exit"),
         check=errors_with("sys.exit(0)")),
    Case("engine-nan-amount-on-grant", 0, (),
         engine("import pandas as pd, numpy as np\ndef decide(cases):\n"
                f"    out = {_FRAME}\n    out.loc[out.index[:3], 'amount'] = np.nan\n    return out\n",
                module="eng_nan"), check=errors_with("amount is missing", 3)),
    Case("engine-raises-over-budget", 2, ("error budget",),
         engine("def decide(cases):\n    raise ValueError('boom')\n", module="eng_boom", budget=0.0)),
    # a hung Python engine: its batch times out (a daemon thread is abandoned), its cases are errors, the run goes on
    Case("engine-python-hangs", 0, (),
         engine("import time\ndef decide(cases):\n    time.sleep(1e9)\n", module="eng_hang",
                keys={"batch_timeout_s": 0.5}), check=errors_with("timeout: no answer within 0.5 s", N)),
    Case("engine-python-hangs-one-batch-prints", 0, (),
         engine("import time\nimport pandas as pd\ndef decide(cases):\n"
                "    if (cases['case_id'].astype(str) == 'c0000015').any():\n"
                "        print('about to hang')\n        time.sleep(1e9)\n"
                f"    return {_FRAME}\n", module="eng_hang_one", keys={"batch_timeout_s": 0.5, "batch_size": 10}),
         check=lambda run, out, err: (errors_with("timeout: no answer within 0.5 s", 10)(run, out, err),
                                      json_stdout(run, out, err))),
    Case("engine-python-hangs-per-case-workers", 0, (),
         engine("import time\nfrom audit.engine import per_case\n@per_case\ndef decide(case):\n"
                "    if case['case_id'] == 'c0000025':\n        while True:\n            pass\n"
                "    return {'outcome': 'grant', 'amount': 5.0}\n", module="eng_spin",
                keys={"batch_timeout_s": 1.0, "batch_size": 20, "workers": 2}),
         check=errors_with("timeout: no answer within 1 s", 20)),
    Case("subprocess-engine-hangs", 0, (),
         subprocess_engine("import time\ntime.sleep(60)\n", timeout=1.0), check=errors_with("timeout", N)),
    Case("subprocess-engine-exit-1", 0, (),
         subprocess_engine("import sys\nsys.stderr.write('crashed')\nsys.exit(1)\n"), check=errors_with("crashed")),
]

# -- family 5: exit codes of the command line ---------------------------------------------------------------------
CASES += [
    Case("cli-out-is-a-file", 2, ("--out", "file"),
         lambda tmp, pop: (tmp.joinpath("afile").write_text("x"), _write_run(tmp, pop, _base_spec())[:2]
                           + ["--out", str(tmp / "afile")])[1]),
    Case("cli-out-under-a-file", 2, ("afile",),
         lambda tmp, pop: (tmp.joinpath("afile").write_text("x"), _write_run(tmp, pop, _base_spec())[:2]
                           + ["--out", str(tmp / "afile" / "sub")])[1]),
    Case("cli-unknown-command", 2, ("No such command",), cli("frobnicate")),
    Case("cli-unknown-option", 2, ("No such option",), cli("run", "x.yaml", "--colour")),
    Case("cli-seed-not-int", 2, ("seed",), cli("run", "x.yaml", "--seed", "abc")),
    Case("cli-generate-bad-bias", 2, ("--bias",),
         cli("generate", str(ROOT / "datasets/sweden/population-2026.yaml"), "--n", "5", "--bias", "oops",
             "-o", "{tmp}/g.csv")),
    Case("cli-generate-n-zero", 2, ("--n",), cli("generate", "x.yaml", "--n", "0")),
    Case("cli-check-missing-data", 2, ("file not found",),
         cli("check", "{tmp}/missing.csv", "--suite", str(ROOT / "checks/application.yaml"))),
    Case("cli-check-missing-suite", 2, ("not found",), cli("check", "{tmp}/pop.csv", "--suite", "{tmp}/none.yaml")),
    Case("cli-trace-missing-run", 2, ("no-run",), cli("trace", "{tmp}/no-run", "c1")),
    Case("cli-history-missing-folder", 2, ("no-history",), cli("history", "{tmp}/no-history")),
    Case("cli-monitor-bad-period", 2, ("period",),
         lambda tmp, pop: _write_run(tmp, pop, _base_spec())[:2][:0]
         + ["monitor", str(tmp / "spec.yaml"), "--history", str(tmp / "h"), "--period", "2026-13"]),
]

# -- family 6: CSV formula injection -------------------------------------------------------------------------------
for label in ("=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)", "\tx"):
    CASES.append(Case(
        f"csv-injection-{label[:4].strip() or 'tab'}", (0, 1), (),
        data_change(lambda f, label=label: f.assign(
            team=["=HYPERLINK(\"http://x\")" if i % 2 else label for i in range(len(f))]),
            sensitive_features=["sex", "team"]), check=csv_defused))

# -- family 7: personnummer in every place the spec allows ----------------------------------------------------------
FORMATS = list(PNRS)


def _module(prefix: str, fmt: str) -> str:
    return f"{prefix}_{fmt.replace('-', '_')}"


# places that need a whole run: one format each, rotating, so that every format reaches the artifacts twice
RUN_PLACES: dict[str, Callable[[str, str], Case]] = {
    "description": lambda fmt, p: Case(f"pnr-{fmt}-description", 0, (), spec_over(description=f"case of {p}"), (p,)),
    "audit-name": lambda fmt, p: Case(f"pnr-{fmt}-audit-name", 2 if "+" in p else 0,
                                      ("name",) if "+" in p else (), spec_over(name=f"audit-{p}"), (p,)),
    "column-name": lambda fmt, p: Case(f"pnr-{fmt}-column-name", 0, (),
                                       data_change(lambda f: f.assign(**{f"note_{p}": "x"})), (p,)),
    "case-values": lambda fmt, p: Case(f"pnr-{fmt}-case-values", 0, (),
                                       data_change(lambda f: f.assign(case_id=[f"{p[:-4]}{i:04d}"
                                                                               for i in range(len(f))])),
                                       tuple(f"{p[:-4]}{i:04d}" for i in range(3))),
    "group-label": lambda fmt, p: Case(f"pnr-{fmt}-group-label", 0, (),
                                       data_change(lambda f: f.assign(team=[p if i % 2 else "other"
                                                                            for i in range(len(f))]),
                                                   sensitive_features=["sex", "team"]), (p,)),
    "free-text": lambda fmt, p: Case(f"pnr-{fmt}-free-text", 0, (),
                                     data_change(lambda f: f.assign(note=f"ring {p} om hyran")), (p,)),
    "engine-reasons": lambda fmt, p: Case(
        f"pnr-{fmt}-engine-reasons", 0, (),
        engine(f"import pandas as pd\ndef decide(cases):\n    out = {_FRAME}\n    out['reasons'] = 'CHECK;{p}'\n"
               "    return out\n", module=_module("eng_reason", fmt)), (p,)),
    "engine-exception": lambda fmt, p: Case(
        f"pnr-{fmt}-engine-exception", 0, (),
        engine(f"def decide(cases):\n    raise ValueError('no registry answer for {p}')\n",
               module=_module("eng_exc", fmt)), (p,)),
    "engine-prints": lambda fmt, p: Case(
        f"pnr-{fmt}-engine-prints", 0, (),
        engine(f"import pandas as pd\ndef decide(cases):\n    print('looking up {p}')\n    return {_FRAME}\n",
               module=_module("eng_prn", fmt), extra=()), (p,)),
    "http-error-body": lambda fmt, p: Case(f"pnr-{fmt}-http-error-body", 0, (), http_engine(p), (p,)),
    "http-error-body-over-budget": lambda fmt, p: Case(f"pnr-{fmt}-http-error-body-over-budget", 2,
                                                       ("error budget",), http_engine(p, 500, 0.0), (p,)),
    "subprocess-stderr": lambda fmt, p: Case(
        f"pnr-{fmt}-subprocess-stderr", 0, (),
        subprocess_engine(f"import sys\nsys.stderr.write('failed for {p}')\nsys.exit(1)\n"), (p,)),
}
for k, (place, make) in enumerate(RUN_PLACES.items()):
    fmt = FORMATS[k % len(FORMATS)]
    CASES.append(make(fmt, PNRS[fmt]))

# places that fail before a run (cheap): every format
for fmt, pnr in PNRS.items():
    CASES += [
        Case(f"pnr-{fmt}-spec-error", 2, ("colour",), spec_over(colour=pnr), (pnr,)),
        Case(f"pnr-{fmt}-missing-data-file", 2, ("no such file",),
             spec_over(population={"file": f"cases-{pnr}.csv"}), (pnr,)),
        Case(f"pnr-{fmt}-rename-missing", 2, ("rename",),
             spec_over(population={"file": "pop.csv", "rename": {f"col{pnr}": "x"}}), (pnr,)),
        Case(f"pnr-{fmt}-sensitive-missing", 2, ("sensitive",), spec_over(sensitive_features=[f"s{pnr}"]), (pnr,)),
        Case(f"pnr-{fmt}-engine-exception-over-budget", 2, ("error budget",),
             engine(f"def decide(cases):\n    raise ValueError('no registry answer for {pnr}')\n",
                    module=_module("eng_excb", fmt), budget=0.0), (pnr,)),
        Case(f"pnr-{fmt}-sheet-name", 2, ("no sheet",),
             lambda tmp, pop, p=pnr: _write_run(tmp, pop, _base_spec(population={"file": "pop.xlsx", "sheet": p}),
                                                data="pop.xlsx"), (pnr,)),
        Case(f"pnr-{fmt}-check-output", (0, 1, 2), (),
             cli("check", "{tmp}/notes.csv", "--suite", str(ROOT / "checks/application.yaml"),
                 files={"notes.csv": f"case_id,note\n{pnr},x\nc2,{pnr}\n"}), (pnr,)),
    ]


def _run_main(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            else:  # pragma: no cover - main always exits
                code = 0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def _texts_of(run_root: Path) -> list[tuple[str, str]]:
    """Every artifact of every run folder under ``run_root`` as text (Parquet: every cell and column name)."""
    texts: list[tuple[str, str]] = []
    for path in sorted(p for p in run_root.rglob("*") if p.is_file()):
        texts.append((str(path.relative_to(run_root)), ""))  # the path itself
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            cells = [" ".join(table.column_names)]
            for col in table.columns:
                cells.extend(str(v) for v in col.to_pylist())
            texts.append((path.name, "\n".join(cells)))
        else:
            texts.append((path.name, path.read_text(encoding="utf-8", errors="replace")))
    return texts


def _leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    found = [s for s in secrets if s in text]
    if mask(text) != text:
        found.append("a personnummer-shaped string")
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, population: pd.DataFrame, tmp_path: Path, real_processes: Any) -> None:
    # real_processes: the real-process cases start with the first case and run beside the in-process ones
    assert case.build is not None
    try:
        args = case.build(tmp_path, population)
        code, out, err = _run_main(args, case.env)
    finally:
        while _SERVERS:
            _SERVERS.pop().__exit__(None, None, None)
    streams = out + err
    expected = case.code if isinstance(case.code, tuple) else (case.code,)
    assert code in expected, f"exit {code}, expected {expected}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert "Traceback" not in streams and "internal error" not in streams, streams[-3000:]
    for word in case.words:
        assert word.lower() in streams.lower(), f"{word!r} not in: {streams[-2000:]}"
    assert not _leaks(streams, case.secrets), streams[-2000:]
    out_root = tmp_path / "out"
    runs = [p for p in out_root.glob("*/*") if p.is_dir()] if out_root.is_dir() else []
    for name, text in _texts_of(out_root) if out_root.is_dir() else []:
        assert not _leaks(name + text, case.secrets), name
    run = runs[0] if runs else None
    if run is not None:  # nothing lost: every case of the input is in decisions.parquet with a status
        dec = pd.read_parquet(run / "decisions.parquet")
        assert len(dec) == N and dec["case_id"].is_unique
        assert set(dec["status"]) <= {"ok", "error", "quarantined"}
        assert (dec.loc[dec["status"] != "ok", "status_reason"] != "").all()
        assert not list(out_root.glob("*/.*")), "a temporary run folder was left behind"
    if case.check is not None:
        case.check(run, out, err)


def test_the_corpus_is_large_and_covers_every_family() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 150
    for family in ("yaml-", "threshold-", "spec-", "data-", "baseline-", "engine-", "subprocess-", "cli-",
                   "csv-injection-", "pnr-"):
        assert any(n.startswith(family) for n in names), family


SUBPROCESS_CASES = ["yaml-alias-bomb-8x9", "engine-sys-exit-0", "engine-prints-to-stdout", "cli-out-is-a-file",
                    "pnr-12-dash-engine-exception-over-budget", "spec-missing-file",
                    "engine-python-hangs-one-batch-prints"]


@pytest.fixture(scope="module")
def real_processes(population: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start every real-process case at once and hand each test its own.

    The processes are independent programs, so they run side by side: each spends most of its time starting
    Python and importing Insyn, and those start-ups overlap instead of adding up. Output goes to files (a full
    pipe cannot block a process that nobody reads yet).
    """
    started: dict[str, tuple[subprocess.Popen[bytes], list[str], Case, Path]] = {}
    for name in SUBPROCESS_CASES:
        case = next(c for c in CASES if c.name == name)
        assert case.build is not None
        tmp = tmp_path_factory.mktemp(name)
        args = case.build(tmp, population)
        env = {**os.environ, **case.env, "PYTHONPATH": str(ROOT)}
        with open(tmp / "stdout.txt", "wb") as out, open(tmp / "stderr.txt", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "audit.cli", *args], stdout=out, stderr=err, env=env,
                                    cwd=tmp)
        started[name] = (proc, args, case, tmp)
    yield started
    for proc, *_ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_as_a_real_process(name: str, real_processes: Any) -> None:
    proc, args, case, tmp = real_processes[name]
    returncode = proc.wait(timeout=300)
    stdout = (tmp / "stdout.txt").read_text(encoding="utf-8")
    stderr = (tmp / "stderr.txt").read_text(encoding="utf-8")
    expected = case.code if isinstance(case.code, tuple) else (case.code,)
    assert returncode in expected, stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    for word in case.words:
        assert word.lower() in (stdout + stderr).lower()
    assert not _leaks(stdout + stderr, case.secrets)
    if "--json" in args and returncode in (0, 1):
        json.loads(stdout)
