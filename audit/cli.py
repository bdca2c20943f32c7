"""The ``insyn`` command line: a thin layer over the Python API.

Exit codes, for scripts and cron jobs:

0
    the run completed and no finding is over the spec's thresholds;
1
    the run completed with findings (a threshold FAIL or an ERROR, i.e. a
    threshold that could not be evaluated), or ``insyn check`` found a failed
    expectation, or ``insyn monitor`` raised an alert, or ``insyn verify
    --rerun`` found metric rows that differ from the recorded run;
2
    a spec, usage or data error: a message, never a traceback; for ``insyn
    verify``, evidence that is incomplete or was changed (each file named);
3
    an internal error (a bug in Insyn; set ``INSYN_DEBUG=1`` for the traceback).

No command holds logic of its own: each one parses its options, calls the
API and prints.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from audit._json import jsonable
from audit._paths import resolve_path
from audit._privacy import GatedStream, mask
from audit._version import __version__
from audit.audit import load_spec
from audit.checks import check_file
from audit.chunked import run_chunked_audit
from audit.evidence import keygen as make_keys
from audit.evidence import verify as verify_evidence
from audit.evidence import write_bundle
from audit.exceptions import InsynError, SpecError
from audit.journey import trace as trace_case
from audit.metrics import DiscoveryResult, exit_status
from audit.monitor import run_monitor, trend
from audit.report import write_trend
from audit.runfolder import RunFolder
from audit.study import run_study
from audit.synth import generate as generate_population
from audit.synth import write_population

__all__ = ["app", "main"]

app = typer.Typer(
    name="insyn",
    help="Audit automated decisions on social assistance for bias and unfairness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_MAX_FINDINGS_SHOWN = 8
_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)


class _Progress:
    """Shows a spinner for a step only once it has run for more than a second."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self._timer: threading.Timer | None = None
        self._status: Any = None
        self._lock = threading.Lock()

    def __call__(self, step: str, state: str) -> None:
        if not self.enabled:
            return
        if state == "start":
            self._stop()
            self._timer = threading.Timer(1.0, self._show, args=(step,))
            self._timer.daemon = True
            self._timer.start()
        else:
            self._stop()

    def _show(self, step: str) -> None:
        with self._lock:
            self._status = self.console.status(f"[bold]{step}[/bold] …")
            self._status.start()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None


def _version_callback(value: bool) -> None:
    if value:
        _out.print(f"insyn {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Insyn audits automated decisions on Swedish social assistance."""
    ctx.call_on_close(_gate_streams())


def _gate_streams() -> Any:
    """Route sys.stdout and sys.stderr through the privacy gate; return the function that undoes it.

    Everything a command prints (its own lines, rich tables, warnings, an
    engine's prints, a library's messages) passes :func:`audit._privacy.mask`.
    """
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, GatedStream):
        sys.stdout = GatedStream(sys.stdout)
    if not isinstance(sys.stderr, GatedStream):
        sys.stderr = GatedStream(sys.stderr)

    def undo() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to say
                pass
        sys.stdout, sys.stderr = saved

    return undo


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _summary_table(result: Any, k: int = 5) -> Table:
    table = Table(title="Largest disparities (furthest from parity; p adjusted for multiple testing)",
                  show_lines=False)
    for col in ("metric", "group", "value [95% CI]", "reference", "ratio [95% CI]", "difference", "p adj."):
        table.add_column(col)
    for r in result.largest_disparities(k).to_dict(orient="records"):
        table.add_row(
            str(r["metric"]),
            str(r["group"]),
            f"{_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
            f"{r['reference_group']}: {_fmt(r['reference_value'])}",
            f"{_fmt(r['ratio'])} [{_fmt(r.get('ratio_ci_low'))}, {_fmt(r.get('ratio_ci_high'))}]",
            _fmt(r["difference"]),
            f"{_fmt_p(r['p_adjusted'])}{' *' if r.get('significant') else ''}",
        )
    return table


def _fmt_p(p: Any) -> str:
    """A p-value for people: 4 decimals, or scientific notation below 0.0001 (never 0.0000)."""
    if p is None or (isinstance(p, float) and p != p):
        return "–"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _print_result(result: Any, *, quiet: bool, as_json: bool) -> None:
    if as_json:
        summary = {
            "run_id": result.run_id,
            "run_dir": str(result.run_dir) if result.run_dir else None,
            "exit_code": result.exit_code,
            "findings": result.to_dict()["findings"],
            # full precision (pandas' to_json rounds to 10 digits: a p-value of 1e-40 became 0.0)
            "largest_disparities": jsonable(result.largest_disparities(5).to_dict(orient="records")),
        }
        sys.stdout.write(json.dumps(jsonable(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return
    if quiet:
        return
    _out.print(_summary_table(result))
    counts: dict[str, int] = {}
    for f in result.findings:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    if counts:
        _out.print("Findings: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    flagged = [f for f in result.findings if f["status"] in ("FAIL", "ERROR", "WARN")]
    for f in flagged[:_MAX_FINDINGS_SHOWN]:
        _out.print(f"  {f['status']}: {f['name']}")
    if len(flagged) > _MAX_FINDINGS_SHOWN:
        _out.print(f"  … and {len(flagged) - _MAX_FINDINGS_SHOWN} more (see the report)")
    if result.run_dir:
        _out.print(f"Report: {Path(result.run_dir) / 'report.html'}")


def _guard(fn: Any) -> Any:
    """Run a command body, mapping errors to exit codes 2 and 3."""
    try:
        return fn()
    except typer.Exit:
        raise
    except InsynError as exc:
        _err.print("[bold red]error:[/bold red] " + escape(mask(str(exc))), markup=True, highlight=False,
                   soft_wrap=True)
        failures = getattr(exc, "failures", None)
        if failures is not None and len(failures):
            _err.print(mask(failures.head(20).to_string(index=False)), markup=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _err.print("interrupted")
        raise typer.Exit(130) from None
    except OSError as exc:  # a file that cannot be read or written: the user's environment, not a bug
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _err.print(mask(f"error: cannot use{where}: {exc.strerror or exc}. Expected a readable input and a "
                        "writable output folder."), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except MemoryError:
        _err.print("error: the input needs more memory than this machine has. Expected a smaller population "
                   "or file (see the limits in docs/spec.md).", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # an internal error: a bug
        _err.print(mask(f"internal error: {type(exc).__name__}: {exc}"), markup=False)
        if os.environ.get("INSYN_DEBUG"):
            _err.print(mask(traceback.format_exc()), markup=False)
        else:
            _err.print("This is a bug in Insyn. Set INSYN_DEBUG=1 to see the traceback.", markup=False)
        raise typer.Exit(3) from None


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="The audit spec (YAML).")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for run output (default: ./reports).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the spec's seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (for cron).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", min=1, help="Run in chunks of N cases.")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="inprocess, processes or dask.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes.")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address.")] = None,
) -> None:
    """Run an audit and write its run folder."""

    def body() -> int:
        audit = load_spec(spec)
        if seed is not None:
            audit = audit.with_options(seed=seed)
        if chunk_size or executor or scheduler or (audit.execution and audit.execution.chunk_size):
            chunked, folder = run_chunked_audit(audit, out=out, chunk_size=chunk_size, executor=executor,
                                                workers=workers, scheduler=scheduler)
            if not quiet:
                _out.print(f"{chunked.rows:,} cases in {chunked.chunks} chunks; run folder: {folder}")
            return exit_status(chunked.findings)
        progress = _Progress(_err, enabled=not quiet and not as_json and _err.is_terminal)
        try:
            result = audit.run(out=out, progress=progress)
        finally:
            progress("", "end")
        _print_result(result, quiet=quiet, as_json=as_json)
        return result.exit_code

    raise typer.Exit(_guard(body))


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option("--out", help="Folder for run output (default: ./reports).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Audit the bundled municipal RPA rule set on 20,000 synthetic applications."""
    def body() -> int:
        path = resolve_path("examples/demo.yaml", Path.cwd())
        audit = load_spec(path)
        if not quiet:
            _out.print(f"Insyn demo: auditing [bold]{audit.engine.kind if audit.engine else ''}[/bold] engine "
                       f"on {audit.population.n:,} synthetic applications (seed {audit.seed}).")
        progress = _Progress(_err, enabled=not quiet and _err.is_terminal)
        try:
            result = audit.run(out=out, progress=progress)
        finally:
            progress("", "end")
        _print_result(result, quiet=quiet, as_json=False)
        return 0

    raise typer.Exit(_guard(body))


@app.command()
def generate(
    spec: Annotated[Path, typer.Argument(help="A population spec, e.g. datasets/sweden/population-2026.yaml.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of cases.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (.parquet or .csv).")] = Path(
        "population.parquet"
    ),
    bias: Annotated[
        list[str] | None, typer.Option("--bias", help="Switch on a bias knob: NAME=STRENGTH (repeatable).")
    ] = None,
) -> None:
    """Generate a synthetic population for use outside an audit."""

    def body() -> int:
        knobs: dict[str, float] = {}
        for item in bias or []:
            name, sep, value = item.partition("=")
            try:
                knobs[name.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not name.strip():
                raise SpecError(f"--bias must have the form NAME=STRENGTH with a number. Got {item!r}.")
        frame = generate_population(spec, n=n, seed=seed, bias=knobs or None)
        write_population(frame, output)
        _out.print(f"Wrote {len(frame):,} cases to {output}")
        return 0

    raise typer.Exit(_guard(body))


@app.command()
def check(
    data: Annotated[Path, typer.Argument(help="A case file (CSV or Parquet).")],
    suite: Annotated[list[Path], typer.Option("--suite", help="An expectation suite (YAML); repeatable.")],
    groups: Annotated[str | None, typer.Option("--groups", help="Column that forms groups for fairness checks.")] = None,
    id_column: Annotated[str, typer.Option("--id-column", help="Column with case ids.")] = "case_id",
) -> None:
    """Run expectation suites on a data file; exit 1 when an expectation fails."""

    def body() -> int:
        report = check_file(data, suite, groups=[groups] if groups else None, id_column=id_column)
        failed = [r for r in report.results if not r["success"]]
        if not failed:
            _out.print(f"All {len(report.results)} expectations passed.")
            return 0
        _out.print(report.to_text(), markup=False, highlight=False)
        if report.success:
            _out.print(f"{len(failed)} expectation(s) with severity warning or info failed; "
                       "no critical expectation failed.")
            return 0
        return 1

    raise typer.Exit(_guard(body))


@app.command()
def trace(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    case_id: Annotated[str, typer.Argument(help="The case to trace.")],
) -> None:
    """Print one case's data journey as a timeline."""

    def body() -> int:
        text = trace_case(run_dir, case_id)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    raise typer.Exit(_guard(body))


@app.command()
def discover(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (reports/<audit>/<run_id>).")],
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", help="deny, refer, wrongful, shortfall or a rate metric (default: the spec's or deny)."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Columns to search, comma-separated (default: the engine's and sensitive ones)."),
    ] = None,
    max_conditions: Annotated[int | None, typer.Option("--max-conditions", help="Most conditions in a group.")] = None,
    min_size: Annotated[int | None, typer.Option("--min-size", help="Fewest cases in a group and in its rest.")] = None,
    bins: Annotated[int | None, typer.Option("--bins", help="Quantile bins of a numeric column.")] = None,
    top: Annotated[int | None, typer.Option("--top", help="Groups to find and test.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the split (default: the run's).")] = None,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="The run's spec file, when it is not found from here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
) -> None:
    """Find the groups nobody named in a finished run: search one half of its cases, test them on the other."""

    def body() -> int:
        folder = RunFolder.open(run_dir, spec=spec)
        chosen = [f.strip() for f in features.split(",") if f.strip()] if features is not None else None
        result = folder.discover(outcome=outcome, features=chosen, max_conditions=max_conditions,
                                 min_size=min_size, bins=bins, top=top, seed=seed)
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
            return 0
        _out.print(_discovery_table(result))
        for note in result.notes:
            _out.print(f"Note: {note}")
        c = result.correction
        _out.print(f"{len(result.confirmed)} of {len(result.groups)} group(s) confirmed on the test half "
                   f"({result.sizes['test']:,} cases; searched on {result.sizes['search']:,}); p-values "
                   f"corrected ({c['method']}) with the run's tests, {c['m']} in all.")
        return 0

    raise typer.Exit(_guard(body))


def _discovery_table(result: DiscoveryResult) -> Table:
    """The groups a discovery found, one row each: the test half's figures and the status of each."""
    alpha = float(result.settings["alpha"])
    table = Table(title=f"Groups found: {result.metric} against the rest (test half, adjusted for multiple testing)")
    columns = ("#", "group", "cases", "rate [95% CI]", "rest", "ratio [95% CI]", "p adj.", "status", "over-represented")
    for col in columns:
        table.add_column(col)
    for g in result.groups:
        t = g.test
        status = ("suppressed" if t["suppressed"] else "confirmed" if g.confirmed(alpha)
                  else "contradicted" if (t["p_adjusted"] or 1.0) < alpha else "not confirmed")
        makeup = "; ".join(f"{r['group']} {r['share']:.0%} (all {r['population_share']:.0%})"
                           for r in g.overrepresented())
        table.add_row(
            str(g.rank),
            g.definition,
            "<" + str(result.settings["min_group_size"]) if g.n_cases is None else f"{g.n_cases:,}",
            f"{_fmt(t['value'])} [{_fmt(t['ci_low'])}, {_fmt(t['ci_high'])}]",
            _fmt(t["reference_value"]),
            f"{_fmt(t['ratio'], 2)} [{_fmt(t['ratio_ci_low'], 2)}, {_fmt(t['ratio_ci_high'], 2)}]",
            _fmt(t["p_adjusted"], 4),
            status,
            makeup or "–",
        )
    return table


@app.command()
def monitor(
    spec: Annotated[Path, typer.Argument(help="The monitoring spec: an audit spec, usually with a monitor: section.")],
    history: Annotated[Path, typer.Option("--history", help="The history folder (one Parquet file per run).")],
    period: Annotated[
        str | None, typer.Option("--period", help="The month to audit, YYYY-MM (default: the previous month).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for run output (default: ./reports).")] = None,
    arl: Annotated[
        float | None,
        typer.Option("--arl", help="In-control average run length of the whole monitor, in periods (default 1000)."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only the alert lines and what the retention rule pruned (for cron)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as a JSON list.")] = False,
) -> None:
    """Audit one period, add it to the history and alert when disparities move (exit 1 on an alert)."""

    def body() -> int:
        progress = _Progress(_err, enabled=not quiet and not as_json and _err.is_terminal)
        options: dict[str, Any] = {} if arl is None else {"arl": arl}
        try:
            result = run_monitor(spec, history=history, period=period, out=out, progress=progress, **options)
        finally:
            progress("", "end")
        if as_json:
            sys.stdout.write(result.alerts_json() + "\n")
            return result.exit_code
        for line in result.lines():  # plain text, one line each, never wrapped
            sys.stdout.write(line + "\n")
        for run in result.pruned:  # what the retention rule removed (monitor.retention_days)
            sys.stdout.write(run.line(result.audit, result.retention_days or 0) + "\n")
        if not quiet:
            for note in result.notes:
                sys.stdout.write(f"NOTE {result.audit} {result.period}: {note}\n")
            fails = sum(a.severity == "fail" for a in result.alerts)
            state = f"{fails} alert(s)" if fails else "no alerts"
            where = f"; report {Path(result.run.run_dir) / 'report.html'}" if result.run.run_dir else ""
            sys.stdout.write(f"{'ALERTS' if fails else 'OK'} {result.audit} {result.period}: {state}; "
                             f"{result.streams} stream(s) against {result.baseline}{where}\n")
        return result.exit_code

    raise typer.Exit(_guard(body))


@app.command()
def history(
    directory: Annotated[Path, typer.Argument(help="A history folder written by insyn monitor.")],
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A metric to show (repeatable; default: the monitored ones).")
    ] = None,
    attribute: Annotated[
        str | None, typer.Option("--attribute", help="One grouping, e.g. birth_region, or overall for all cases.")
    ] = None,
    audit_name: Annotated[
        str | None, typer.Option("--audit", help="The audit to show when the history holds several.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write a self-contained HTML page here.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the trend as CSV here.")] = None,
    language: Annotated[str, typer.Option("--language", help="Language of the HTML page: en or sv.")] = "en",
) -> None:
    """Print the trend of metrics by group over the periods of a history; write HTML and CSV."""

    def body() -> int:
        frame = trend(directory, metrics=metric or None, attribute=attribute, audit=audit_name)
        for (name, attrs), panel in frame.groupby(["metric", "attributes"], sort=False):
            groups = list(dict.fromkeys(panel["group"]))
            table = Table(title=f"{name} by {attrs or 'all cases'} ({panel['audit'].iloc[0]})")
            table.add_column("period")
            for g in groups:
                table.add_column(str(g) or "all cases", justify="right")
            cells = {(p, g): (v, a) for p, g, v, a in zip(panel["period"], panel["group"], panel["value"],
                                                          panel["alert"])}
            for p in sorted(set(panel["period"])):
                row = [str(p)]
                for g in groups:
                    v, a = cells.get((p, g), (None, ""))
                    text = "–" if v is None or v != v else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}")
                    row.append(text + (" !" if a else ""))
                table.add_row(*row)
            _out.print(table)
        _out.print("! marks a period with an alert.")
        for path in write_trend(frame, html_path=out, csv_path=csv, language=language):
            _out.print(f"Wrote {path}")
        return 0

    raise typer.Exit(_guard(body))


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="A run folder or a bundle (.zip) made by insyn bundle.")],
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Run the audit again from the manifest and compare every metric row.")
    ] = False,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="A trusted public key (.pub of insyn keygen); the bundle must be signed with it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Check a run folder or bundle: hashes, results schema, signature (exit 0 ok, 1 re-run differs, 2 tampered)."""
    def body() -> int:
        outcome = verify_evidence(path, rerun=rerun, key=key)
        if as_json:
            sys.stdout.write(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False) + "\n")
        else:
            for line in outcome.lines():
                sys.stdout.write(line + "\n")
        return outcome.exit_code

    raise typer.Exit(_guard(body))


@app.command()
def study(
    spec: Annotated[Path, typer.Argument(help="The study spec (YAML): a base audit, factors, design, replicates.")],
    out: Annotated[Path | None, typer.Option("--out", help="The study folder (default: studies/<name>).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes.")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="A dask.distributed scheduler address (runs on Dask).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only failures.")] = False,
) -> None:
    """Run a bias study (resuming its folder); exit 1 when some run failed, 2 for a bad study spec."""

    def body() -> int:
        bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=_err, disable=quiet)
        job: list[Any] = []

        def progress(done: int, total: int, key: str, failed: bool) -> None:
            if not job:
                job.append(bar.add_task("study runs", total=total, completed=done))
            bar.update(job[0], completed=done, description=f"study runs ({key} failed)" if failed else "study runs")

        with bar:
            result = run_study(spec, out=out, workers=workers, scheduler=scheduler, progress=progress)
        if not quiet:
            _out.print(f"Study {result.out}: {result.finished} of {result.total} runs finished "
                       f"({result.skipped} resumed) in {result.duration_s:.1f} s; see study.html and power.csv.",
                       soft_wrap=True)
        for key, error in result.failures:
            _err.print(f"FAILED {key}: {error}", markup=False, highlight=False, soft_wrap=True)
        if result.failures:
            _err.print(f"{len(result.failures)} run(s) failed; listed in {result.out / 'failures.csv'}", markup=False)
        return result.exit_code

    raise typer.Exit(_guard(body))


@app.command()
def bundle(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The zip file to write (must not exist).")],
    sign: Annotated[
        Path | None, typer.Option("--sign", help="Sign the bundle with this private key (from insyn keygen).")
    ] = None,
) -> None:
    """Pack a verified run folder with its spec, rule file, suites and allowed data into one zip file."""
    def body() -> int:
        info = write_bundle(run_dir, output, sign_with=sign)
        signed = f", signed by key {info.key_id}" if info.key_id else ", not signed"
        sys.stdout.write(f"Wrote {info.path} (run {info.run_id}): {info.files} files{signed}.\n")
        for item in info.withheld:
            sys.stdout.write(f"  left out, SHA-256 only: {item}\n")
        return 0

    raise typer.Exit(_guard(body))


@app.command()
def keygen(
    key: Annotated[Path, typer.Argument(help="The private key file to create; the public key goes to KEY.pub.")] = Path(
        "insyn.key"
    ),
) -> None:
    """Make an Ed25519 key pair for signing bundles (private key file mode 0600)."""
    def body() -> int:
        private, public, kid = make_keys(key)
        sys.stdout.write(f"Wrote the private key {private} (mode 0600; keep it secret) and the public key {public}.\n")
        sys.stdout.write(f"Key id: {kid}\n")
        return 0

    raise typer.Exit(_guard(body))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``insyn`` console script.

    Standard output and standard error pass the privacy gate for the whole
    command, usage errors included.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Raises
    ------
    SystemExit
        Always, with the exit code.
    """
    undo = _gate_streams()
    try:
        app(args=argv, prog_name="insyn")
    finally:
        undo()


if __name__ == "__main__":  # pragma: no cover
    main()
