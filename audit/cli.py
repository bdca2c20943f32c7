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
API and prints through :mod:`audit.console`. Output to a pipe or a file is
never wrapped or cut (``--format csv|json`` gives the rows without layout),
and ``--lang sv`` prints Swedish wherever the report speaks Swedish.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from audit._json import jsonable
from audit._paths import display_path, resolve_path
from audit._privacy import GatedStream, mask
from audit._version import __version__
from audit.audit import load_spec
from audit.checks import check_file, convert_suite
from audit.chunked import run_chunked_audit
from audit.console import (
    Speaker,
    check_rows,
    check_table,
    chunked_run_line,
    disparity_rows,
    finding_lines,
    make_console,
    memory_run_note,
    summary_table,
    write_rows,
)
from audit.attribution import trace_attribution
from audit.exceptions import DataError, InsynError, SpecError
from audit.execution import plan_execution
from audit.journey import trace as trace_case
from audit.metrics import DiscoveryResult, read_stage_table
from audit.metrics import funnel as funnel_measures
from audit.reference import markdown_reference, schema_text
from audit.result import AuditResult
from audit.report import write_trend
from audit.runfolder import RunFolder
from audit.scaffold import example_spec, init_project
from audit.synth import generate as generate_population
from audit.synth import write_population

__all__ = ["app", "console", "main"]

app = typer.Typer(
    name="insyn",
    help="Audit automated decisions on social assistance for bias and unfairness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_MAX_FINDINGS_SHOWN = 8

Format = Literal["table", "csv", "json"]
Language = Literal["en", "sv"]

_LANG_HELP = "Language of the console: en or sv (default: the spec's report.language, else en)."
_FORMAT_HELP = "table for people; csv or json for programs (full precision, never cut)."


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
        sys.stdout.write(f"insyn {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
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


def _print_result(result: Any, *, quiet: bool, fmt: str, speaker: Speaker,
                  execution: dict[str, Any] | None = None) -> None:
    if fmt == "json":
        summary = {
            "run_id": result.run_id,
            "run_dir": str(result.run_dir) if result.run_dir else None,
            "exit_code": result.exit_code,
            "findings": result.to_dict()["findings"],
            # full precision (pandas' to_json rounds to 10 digits: a p-value of 1e-40 became 0.0)
            "largest_disparities": jsonable(result.largest_disparities(5).to_dict(orient="records")),
        }
        if execution is not None:
            summary["execution"] = execution
        sys.stdout.write(json.dumps(jsonable(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return
    if fmt == "csv":
        write_rows(disparity_rows(result, 5), "csv")
        return
    if quiet:
        return
    out = make_console()
    out.print(summary_table(result, speaker))
    for line in finding_lines(result, speaker, limit=_MAX_FINDINGS_SHOWN):
        out.print(line, markup=False)
    if result.run_dir:
        out.print(speaker("report_path", path=Path(result.run_dir) / "report.html"), markup=False)


def _guard(fn: Any) -> Any:
    """Run a command body, mapping errors to exit codes 2 and 3."""

    err = make_console(stderr=True)
    try:
        return fn()
    except typer.Exit:
        raise
    except InsynError as exc:
        err.print("[bold red]error:[/bold red] " + escape(mask(str(exc))), markup=True, highlight=False,
                  soft_wrap=True)
        failures = getattr(exc, "failures", None)
        if failures is not None and len(failures):
            err.print(mask(failures.head(20).to_string(index=False)), markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except OSError as exc:  # a file that cannot be read or written: the user's environment, not a bug
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        err.print(mask(f"error: cannot use{where}: {exc.strerror or exc}. Expected a readable input and a "
                       "writable output folder."), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except MemoryError:
        err.print("error: the input needs more memory than this machine has. Expected a smaller population "
                  "or file (see the limits in docs/spec.md).", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # an internal error: a bug
        err.print(mask(f"internal error: {type(exc).__name__}: {exc}"), markup=False, soft_wrap=True)
        if os.environ.get("INSYN_DEBUG"):
            err.print(mask(traceback.format_exc()), markup=False, soft_wrap=True)
        else:
            err.print("This is a bug in Insyn. Set INSYN_DEBUG=1 to see the traceback.", markup=False)
        raise typer.Exit(3) from None


def _spec_path(spec: Path | None, example: str | None, speaker_lang: str | None) -> Path:
    """The spec file to run: SPEC, or a shipped example by name; notes a fallback to a shipped spec."""

    if (spec is None) == (example is None):
        raise SpecError("Name a spec file (insyn run SPEC) or a shipped example (insyn run --example NAME), "
                        f"not {'both' if spec is not None else 'neither'}.")
    if example is not None:
        return example_spec(example)
    assert spec is not None
    if not spec.is_file():
        shipped = resolve_path(spec, None)
        if shipped.is_file():
            note = Speaker(speaker_lang or "en")(
                "shipped_example", given=str(spec), folder=display_path((Path.cwd() / spec).parent), path=shipped)
            make_console(stderr=True).print(f"note: {note}", markup=False, soft_wrap=True)
            return shipped
    return spec


@app.command(short_help='Run an audit and write its run folder.')
def run(
    spec: Annotated[
        Path | None, typer.Argument(metavar="SPEC", help="The audit spec (YAML).", show_default=False)
    ] = None,
    example: Annotated[
        str | None, typer.Option("--example", metavar="NAME", help="Run an example shipped with Insyn (e.g. demo).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Folder for run output (default: ./reports).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="Override the spec's seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (for cron).")] = False,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", metavar="N", min=1, help="Run in chunks of N cases.")
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", metavar="KIND", help="inprocess, processes or dask.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", metavar="N", min=1, help="Worker processes.")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", metavar="ADDRESS", help="Dask scheduler address.")
    ] = None,
    in_memory: Annotated[
        bool, typer.Option("--in-memory", help="Hold the run in memory whatever its size (no chunks).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON (= --format json).")] = False,
    fmt: Annotated[Format, typer.Option("--format", help=_FORMAT_HELP)] = "table",
    lang: Annotated[Language | None, typer.Option("--lang", help=_LANG_HELP)] = None,
) -> None:
    """Run an audit and write its run folder."""

    def body() -> int:
        audit = load_spec(_spec_path(spec, example, lang))
        if seed is not None:
            audit = audit.with_options(seed=seed)
        speaker = Speaker(lang or audit.report.language)
        form = "json" if as_json else fmt
        plan = plan_execution(audit, chunk_size=chunk_size, executor=executor, workers=workers,
                              scheduler=scheduler, in_memory=in_memory)
        err = make_console(stderr=True)
        if plan.chunked:
            chunked, folder = run_chunked_audit(audit, out=out, chunk_size=plan.chunk_size, executor=plan.executor,
                                                workers=plan.workers, scheduler=plan.scheduler, why=plan.why)
            if not quiet and form == "table":
                make_console().print(chunked_run_line(speaker, plan, rows=chunked.rows, chunks=chunked.chunks),
                                     markup=False, soft_wrap=True)
            loaded = AuditResult.load(folder, decisions=False)  # results.json, as a third party reads it
            _print_result(loaded, quiet=quiet, fmt=form, speaker=speaker, execution=plan.to_dict())
            return loaded.exit_code
        if plan.reason == "not_chunkable" and not quiet:  # a run above auto_above held in memory: say why
            err.print(memory_run_note(speaker, plan), markup=False, soft_wrap=True)
        progress = _Progress(err, enabled=not quiet and form == "table" and err.is_terminal)
        try:
            result = audit.run(out=out, progress=progress)
        finally:
            progress("", "end")
        _print_result(result, quiet=quiet, fmt=form, speaker=speaker, execution=plan.to_dict())
        return result.exit_code

    raise typer.Exit(_guard(body))


@app.command(short_help='Audit the demo rule set on 20,000 cases.')
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Folder for run output (default: ./reports).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    lang: Annotated[Language | None, typer.Option("--lang", help=_LANG_HELP)] = None,
) -> None:
    """Audit the bundled municipal RPA rule set on 20,000 synthetic applications."""
    def body() -> int:
        audit = load_spec(example_spec("demo"))
        speaker = Speaker(lang or audit.report.language)
        console = make_console()
        if not quiet:
            console.print(speaker("demo_intro", engine=audit.engine.kind if audit.engine else "",
                                  n=f"{audit.population.n:,}", seed=audit.seed), markup=False)
        err = make_console(stderr=True)
        progress = _Progress(err, enabled=not quiet and err.is_terminal)
        try:
            result = audit.run(out=out, progress=progress)
        finally:
            progress("", "end")
        _print_result(result, quiet=quiet, fmt="table", speaker=speaker)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Create an audit project to edit.')
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The folder to create (new or empty).")],
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="The audit's name (default: the folder's name).")
    ] = None,
    lang: Annotated[Language, typer.Option("--lang", help="Language of the console: en or sv.")] = "en",
) -> None:
    """Create an audit project: example specs, suites, a population card and a README saying what to edit."""

    def body() -> int:
        written = init_project(directory, name=name)
        console = make_console()
        for path in written:
            console.print(f"  {display_path(path)}", markup=False)
        console.print(Speaker(lang)("init_done", path=display_path(directory)), markup=False)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help="Print the spec's JSON Schema or reference.")
def schema(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="The spec kind: audit or study.")] = "audit",
    fmt: Annotated[
        Literal["json", "markdown"], typer.Option("--format", help="json: the JSON Schema; markdown: the reference.")
    ] = "json",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of the audit or study spec (or its Markdown reference), for editors and CI."""

    def body() -> int:
        text = schema_text(kind) if fmt == "json" else markdown_reference(kind)
        if output is None:
            sys.stdout.write(text)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Convert a suite: Insyn YAML <-> GX JSON.')
def suite(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="A suite: Insyn YAML or great-expectations JSON.")],
    dest: Annotated[Path, typer.Argument(metavar="DEST", help="Where to write it: .json (GX) or .yaml (Insyn).")],
    groups: Annotated[
        list[str] | None,
        typer.Option("--groups", metavar="COL", help="Fill fairness-aware checks' group column (repeatable)."),
    ] = None,
) -> None:
    """Convert an expectation suite between Insyn's YAML and great-expectations' own JSON."""

    def body() -> int:
        written = convert_suite(source, dest, groups=groups or None)
        make_console().print(Speaker("en")("wrote", path=display_path(written)), markup=False)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Generate a synthetic population.')
def generate(
    spec: Annotated[
        Path, typer.Argument(metavar="SPEC", help="A population spec, e.g. datasets/sweden/population-2026.yaml.")
    ],
    n: Annotated[int, typer.Option("--n", metavar="N", min=1, help="Number of cases.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", metavar="N", min=0, help="Random seed.")] = 0,
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="FILE", help="Output file (.parquet or .csv).")
    ] = Path("population.parquet"),
    bias: Annotated[
        list[str] | None,
        typer.Option("--bias", metavar="NAME=STRENGTH", help="Switch on a bias knob (repeatable)."),
    ] = None,
    lang: Annotated[Language, typer.Option("--lang", help="Language of the console: en or sv.")] = "en",
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
        make_console().print(Speaker(lang)("wrote_cases", n=f"{len(frame):,}", path=output), markup=False)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Check a data file against suites.')
def check(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="A case file (CSV or Parquet).")],
    suite: Annotated[
        list[Path],
        typer.Option("--suite", metavar="SUITE", help="An expectation suite (YAML or GX JSON); repeatable."),
    ],
    groups: Annotated[
        str | None, typer.Option("--groups", metavar="COL", help="Column that forms groups for fairness checks.")
    ] = None,
    id_column: Annotated[str, typer.Option("--id-column", metavar="COL", help="Column with case ids.")] = "case_id",
    fmt: Annotated[Format, typer.Option("--format", help=_FORMAT_HELP)] = "table",
    lang: Annotated[Language, typer.Option("--lang", help="Language of the console: en or sv.")] = "en",
) -> None:
    """Run expectation suites on a data file; exit 1 when a critical expectation fails."""

    def body() -> int:
        report = check_file(data, suite, groups=[groups] if groups else None, id_column=id_column)
        code = 0 if report.success else 1
        if fmt != "table":
            if fmt == "json":
                sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
            else:
                write_rows(check_rows(report), "csv")
            return code
        speaker = Speaker(lang)
        console = make_console()
        failed = report.failures
        if not failed:
            console.print(speaker("check_passed", n=len(report.results)), markup=False)
            return 0
        head, table, more = check_table(report, speaker)
        console.print(head, markup=False)
        if table is not None:
            console.print(table)
        if more:
            console.print(more, markup=False)
        if report.success:
            console.print(speaker("check_only_warnings", n=len(failed)), markup=False)
        return code

    raise typer.Exit(_guard(body))


@app.command(short_help="Print one case's data journey.")
def trace(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run folder.")],
    case_id: Annotated[str, typer.Argument(metavar="CASE_ID", help="The case to trace.")],
) -> None:
    """Print one case's data journey as a timeline, and which stage changed its decision (``attribution:``)."""

    def body() -> int:
        text = trace_case(run_dir, case_id).rstrip("\n") + trace_attribution(run_dir, case_id)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Find groups nobody named in a finished run.')
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
        console = make_console()
        console.print(_discovery_table(result))
        for note in result.notes:
            console.print(f"Note: {note}")
        c = result.correction
        console.print(f"{len(result.confirmed)} of {len(result.groups)} group(s) confirmed on the test half "
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
    speak = Speaker("en")
    f = speak.numbers
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
            f"{speak.value(t['value'], result.metric)} ({speak.interval(t['ci_low'], t['ci_high'], result.metric)})",
            speak.value(t["reference_value"], result.metric),
            f"{f.ratio(t['ratio'])} ({f.ratio_interval(t['ratio_ci_low'], t['ratio_ci_high'])})",
            f.p_value(t["p_adjusted"]),
            status,
            makeup or "–",
        )
    return table


@app.command(short_help="Where along the journey a group's share shifts.")
def funnel(
    path: Annotated[Path, typer.Argument(metavar="RUN|TABLE", help="A finished run folder, or a published stage "
                                                                 "table (CSV, Excel, Parquet; long or wide).")],
    stages: Annotated[
        str | None, typer.Option("--stages", help="Stage columns (wide) or stages (long), comma-separated, in "
                                                  "journey order; the first is the population.")
    ] = None,
    group: Annotated[str, typer.Option("--group", metavar="COL", help="The table's group column.")] = "group",
    attribute: Annotated[
        str | None, typer.Option("--attribute", metavar="COL", help="The table's column naming each row's attribute.")
    ] = None,
    total: Annotated[
        str | None, typer.Option("--total", metavar="LABEL", help="The group label of a stage's total row.")
    ] = None,
    min_group_size: Annotated[int, typer.Option("--min-group-size", help="Suppress smaller cells (table).")] = 10,
    alpha: Annotated[float, typer.Option("--alpha", help="1 - the intervals' level (table).")] = 0.05,
    correction: Annotated[
        Literal["holm", "bh", "bonferroni", "none"], typer.Option("--correction", help="p-value correction (table).")
    ] = "holm",
    fmt: Annotated[Format, typer.Option("--format", help=_FORMAT_HELP)] = "table",
) -> None:
    """Print a stage funnel: each group's share entering and leaving every step, and its shift.

    A run folder's funnel is read from its results.json. A stage table gives
    the same measures without case data (suppressed cells such as .. or <5
    allowed): wide, one count column per stage (--stages); or long, a column
    stage with count, or with entering and leaving.
    """

    def body() -> int:
        if path.is_dir():
            given = [o for o, v in (("--stages", stages), ("--attribute", attribute), ("--total", total)) if v]
            if given:
                raise SpecError(f"{given[0]} applies to a stage table; {path} is a run folder.")
            rows = RunFolder.open(path).result.to_dict().get("funnel")
            if rows is None:
                raise DataError(f"{path / 'results.json'}: no funnel. Expected a run over cases made by this "
                                "version of Insyn (an aggregated table has no funnel).")
            where = f"run {path.name}"
        else:
            counts = read_stage_table(path, stages=[s.strip() for s in stages.split(",")] if stages else None,
                                      group=group, attribute=attribute, total=total)
            stats = {"min_group_size": min_group_size, "alpha": alpha, "correction": correction}
            rows = [jsonable(r) for r in funnel_measures(counts, stats).to_dict(orient="records")]
            where = display_path(path)
        if fmt != "table":
            write_rows(rows, fmt)
            return 0

        def cell(v: Any, ci: tuple[Any, Any] | None = None, pct: bool = True) -> str:
            if v is None:
                return "–"
            text = f"{v:.1%}" if pct else f"{v:.2f}"
            if ci and ci[0] is not None and ci[1] is not None:
                text += f" [{ci[0]:.1%}, {ci[1]:.1%}]" if pct else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            return text

        console = make_console()
        for attrs in dict.fromkeys(" & ".join(r["attributes"]) for r in rows):
            table = Table(title=f"Funnel by {attrs} ({where}): share leaving each step against the population")
            for col in ("step", "group", "entering", "leaving", "share in", "share out [CI]", "rate [CI]",
                        "shift", "ratio [CI]", "p adj.", "note"):
                table.add_column(col, justify="right" if col not in ("step", "group", "note") else "left")
            for r in (r for r in rows if " & ".join(r["attributes"]) == attrs):
                table.add_row(
                    r["stage"], r["group"],
                    "–" if r["entering"] is None else f"{r['entering']:,.0f}",
                    "–" if r["leaving"] is None else f"{r['leaving']:,.0f}",
                    cell(r["share_in"]), cell(r["share_out"], (r["share_out_ci_low"], r["share_out_ci_high"])),
                    cell(r["rate"], (r["rate_ci_low"], r["rate_ci_high"])),
                    "–" if r["shift"] is None else f"{r['shift']:+.1%}",
                    cell(r["shift_ratio"], (r["shift_ratio_ci_low"], r["shift_ratio_ci_high"]), pct=False),
                    "–" if r["p_adjusted"] is None else f"{r['p_adjusted']:.4f}", r["reason"] or "",
                )
            console.print(table)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Audit one period and alert on drift.')
def monitor(
    spec: Annotated[
        Path,
        typer.Argument(metavar="SPEC", help="The monitoring spec: an audit spec, usually with a monitor: section."),
    ],
    history: Annotated[
        Path, typer.Option("--history", metavar="DIR", help="The history folder (one Parquet file per run).")
    ],
    period: Annotated[
        str | None,
        typer.Option("--period", metavar="YYYY-MM", help="The month to audit (default: the previous month)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Folder for run output (default: ./reports).")
    ] = None,
    arl: Annotated[
        float | None,
        typer.Option("--arl", metavar="PERIODS",
                     help="In-control average run length of the whole monitor, in periods (default 1000)."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only the alert lines and what the retention rule pruned (for cron)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as a JSON list.")] = False,
) -> None:
    """Audit one period, add it to the history and alert when disparities move (exit 1 on an alert)."""

    def body() -> int:
        err = make_console(stderr=True)
        progress = _Progress(err, enabled=not quiet and not as_json and err.is_terminal)
        options: dict[str, Any] = {} if arl is None else {"arl": arl}
        try:
            from audit.monitor import run_monitor  # scipy.stats and the monitor load only for this command

            result = run_monitor(_spec_path(spec, None, None), history=history, period=period, out=out,
                                 progress=progress, **options)
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


@app.command(short_help='Print the trend of a monitoring history.')
def history(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A history folder written by insyn monitor.")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", metavar="METRIC", help="A metric to show (repeatable; default: the monitored ones)."),
    ] = None,
    attribute: Annotated[
        str | None,
        typer.Option("--attribute", metavar="COL", help="One grouping, e.g. birth_region, or overall for all cases."),
    ] = None,
    audit_name: Annotated[
        str | None, typer.Option("--audit", metavar="NAME", help="The audit to show when the history holds several.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write a self-contained HTML page here.")
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", metavar="FILE", help="Write the trend as CSV here.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help=_FORMAT_HELP)] = "table",
    lang: Annotated[
        Language | None,
        typer.Option("--lang", help="Language of the console and the page: en or sv (default: the spec's report "
                                    "language recorded in the history)."),
    ] = None,
) -> None:
    """Print the trend of metrics and public values by group over the periods of a history; write HTML and CSV."""


    def body() -> int:
        from audit.monitor import trend, trend_language  # loaded only for this command

        frame = trend(directory, metrics=metric or None, attribute=attribute, audit=audit_name, values=True)
        language = lang or trend_language(frame)
        if fmt != "table":  # the monitored metrics; the page and --csv add the public values
            write_rows(frame[frame["public_value"].astype("str") == ""].to_dict(orient="records"), fmt)
            write_trend(frame, html_path=out, csv_path=csv, language=language)
            return 0
        speaker = Speaker(language)
        console = make_console()
        for (name, attrs), panel in frame.groupby(["metric", "attributes"], sort=False):
            if panel["value"].isna().all() and str(panel["reason"].iloc[0]).startswith("not measured"):
                console.print(f"{name}: {panel['reason'].iloc[0]}", markup=False)  # a public value not measured
                continue
            groups = list(dict.fromkeys(panel["group"]))
            # metric, grouping and groups keep the names --metric and --attribute take; the words are translated
            table = Table(title=speaker("history_title", metric=name, attribute=attrs or speaker.attribute([]),
                                        audit=panel["audit"].iloc[0]))
            table.add_column(speaker("history_period"))
            for g in groups:
                table.add_column(str(g) or speaker.attribute([]), justify="right")
            cells = {(p, g): (v, a) for p, g, v, a in zip(panel["period"], panel["group"], panel["value"],
                                                          panel["alert"])}
            for p in sorted(set(panel["period"])):
                row = [str(p)]
                for g in groups:
                    v, a = cells.get((p, g), (None, ""))
                    row.append(speaker.value(v, str(name)) + (" !" if a else ""))
                table.add_row(*row)
            console.print(table)
        console.print(speaker("history_alert_note"), markup=False)
        for path in write_trend(frame, html_path=out, csv_path=csv, language=language):
            console.print(speaker("wrote", path=path), markup=False)
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Check a run folder or bundle.')
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
        from audit.evidence import verify as verify_evidence  # jsonschema loads only for the evidence commands

        outcome = verify_evidence(path, rerun=rerun, key=key)
        if as_json:
            sys.stdout.write(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False) + "\n")
        else:
            for line in outcome.lines():
                sys.stdout.write(line + "\n")
        return outcome.exit_code

    raise typer.Exit(_guard(body))


@app.command(short_help="Run a bias study over a grid of scenarios.")
def study(
    spec: Annotated[
        Path,
        typer.Argument(metavar="SPEC", help="The study spec (YAML): a base audit, factors, design, replicates."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="The study folder (default: studies/<name>).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", metavar="N", min=1, help="Worker processes.")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", metavar="ADDRESS", help="A dask.distributed scheduler address (runs on Dask)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only failures.")] = False,
) -> None:
    """Run a bias study (resuming its folder); exit 1 when some run failed, 2 for a bad study spec."""

    def body() -> int:
        out_console, err = make_console(), make_console(stderr=True)
        bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=err, disable=quiet)
        job: list[Any] = []

        def progress(done: int, total: int, key: str, failed: bool) -> None:
            if not job:
                job.append(bar.add_task("study runs", total=total, completed=done))
            bar.update(job[0], completed=done, description=f"study runs ({key} failed)" if failed else "study runs")

        with bar:
            from audit.study import run_study  # loaded only for this command

            result = run_study(spec, out=out, workers=workers, scheduler=scheduler, progress=progress)
        if not quiet:
            out_console.print(f"Study {result.out}: {result.finished} of {result.total} runs finished "
                              f"({result.skipped} resumed) in {result.duration_s:.1f} s; see study.html and "
                              "power.csv.", markup=False, soft_wrap=True)
        for key, error in result.failures:
            err.print(f"FAILED {key}: {error}", markup=False, highlight=False, soft_wrap=True)
        if result.failures:
            err.print(f"{len(result.failures)} run(s) failed; listed in {result.out / 'failures.csv'}", markup=False)
        return result.exit_code

    raise typer.Exit(_guard(body))


@app.command(short_help='Pack a run folder into an evidence bundle.')
def bundle(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The zip file to write (must not exist).")],
    sign: Annotated[
        Path | None, typer.Option("--sign", help="Sign the bundle with this private key (from insyn keygen).")
    ] = None,
) -> None:
    """Pack a verified run folder with its spec, rule file, suites and allowed data into one zip file."""
    def body() -> int:
        from audit.evidence import write_bundle  # loaded only for this command

        info = write_bundle(run_dir, output, sign_with=sign)
        signed = f", signed by key {info.key_id}" if info.key_id else ", not signed"
        sys.stdout.write(f"Wrote {info.path} (run {info.run_id}): {info.files} files{signed}.\n")
        for item in info.withheld:
            sys.stdout.write(f"  left out, SHA-256 only: {item}\n")
        return 0

    raise typer.Exit(_guard(body))


@app.command(short_help='Make a key pair for signing bundles.')
def keygen(
    key: Annotated[Path, typer.Argument(help="The private key file to create; the public key goes to KEY.pub.")] = Path(
        "insyn.key"
    ),
) -> None:
    """Make an Ed25519 key pair for signing bundles (private key file mode 0600)."""
    def body() -> int:
        from audit.evidence import keygen as make_keys  # loaded only for this command

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


def console() -> None:
    """Entry point of the ``insyn`` console script and ``python -m audit.cli``: :func:`main`, then exit.

    Before the process exits, every object is moved out of the garbage
    collector's reach (:func:`gc.freeze`): the interpreter's last collection
    would otherwise walk every object of pandas, pyarrow and the run (about a
    quarter of a second), only to free memory that the operating system
    takes back anyway. Files, streams and connections are closed before
    this point; exit handlers still run.

    Raises
    ------
    SystemExit
        Always, with :func:`main`'s exit code.
    """
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    console()
