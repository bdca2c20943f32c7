"""Populations of cases: the case frame, its column roles, and where it comes from.

An audit needs cases. A *population* is the set of applications that the
engine under audit decides (or decided): one row per application, a
household's application for one benefit month, in the **case frame** of
DESIGN.md. Columns have roles declared in the audit spec: ``sensitive``
(forms groups; withheld from the engine unless the spec says otherwise),
``features`` (what the engine sees), ``truth`` (the correct decision),
``recorded`` (a decision that was actually made) and ``selection`` (how a case
was picked).

Cases come from one of four sources:

``synthetic``
    a seeded population generated from a population spec (:mod:`audit.synth`);
``file``
    a CSV, Parquet or Excel export of past applications or decisions;
``sql``
    a query against a DuckDB file or any SQLAlchemy URL;
``aggregated``
    a published table of per-group confusion counts or percentages (no
    cases; only group-level metrics can be computed).

Every source goes through the same mapping onto case-frame names: ``rename``
(source name -> case frame name), ``recode`` (per column, source value ->
value, with ``"*"`` for every other value), ``derive`` (new columns, e.g.
quantile bins) and ``case_id`` (a column, or ``row_number`` to number rows
from 1). Cells that are blank or a lone space are missing values. A
``case_id`` that looks like a Swedish personal identity number is replaced
by a pseudonym before anything else sees it (:mod:`audit._privacy`).

An aggregated table has no cases, so ``rename``, ``derive`` and ``case_id``
do not apply to it; ``where`` picks its rows and ``recode`` maps its labels
(e.g. ``Feature_EN: {Gender: sex}``, ``Feature_Value_EN: {Women: female}``)
onto the names of ``sensitive_features``. A blank cell is a cell suppressed
at the source and stays missing: it is never filled in from the other cells
of its row, which would undo the suppression.

Bad input is refused with a message that names the file (and the sheet),
the column, the value, the row and what was expected, e.g.::

    decisions.xlsx (sheet 'Beslut 2025'): column 'sex' has the value 'Okänd',
    which population.recode does not map (no recode for this value; known:
    Kvinna, Man; source column 'Kön', first in data row 3). ...
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._cells import DEFAULT_SUPPRESSION_MARKERS, describe_bound, parse_cells
from audit._columns import (
    ALLOWED_VALUES,
    ASSISTANCE_COLUMNS,
    COST_COLUMNS,
    INCOME_COLUMNS,
    TRUTH_AMOUNT,
    TRUTH_OUTCOME,
    TRUTH_REASONS,
)
from audit._ids import is_unique
from audit._json import jsonable
from audit._privacy import looks_like_personnummer, mask_text_columns, pseudonym_key, pseudonymise
from audit._schema import coded_strings, coerce_case_frame, text_values
from audit.exceptions import CheckCode, DataError, FailureCollector, SpecError, show_value
from audit.journey import column_provenance
from audit.spec import AuditSpec, PopulationSpec
from audit.attribution import split_true_columns
from audit.synth import generate_latent, load_population_spec

__all__ = [
    "ALLOWED_VALUES",
    "ASSISTANCE_COLUMNS",
    "COST_COLUMNS",
    "ColumnEvidence",
    "INCOME_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_FILE_ENV",
    "Population",
    "TRUTH_AMOUNT",
    "TRUTH_OUTCOME",
    "TRUTH_REASONS",
    "apply_mapping",
    "blank_to_missing",
    "check_headers",
    "column_evidence",
    "csv_dialect",
    "iter_table",
    "load_population",
    "max_file_bytes",
    "read_table",
    "suppression_notes",
]

MAX_FILE_BYTES = 2 * 1024**3
"""The largest input file read by default (2 GiB), checked before reading: beyond it, split the file or raise
the limit with ``INSYN_MAX_FILE_BYTES``."""

MAX_FILE_ENV = "INSYN_MAX_FILE_BYTES"
"""Environment variable that overrides :data:`MAX_FILE_BYTES`."""

_MISSING_TOKENS = ("", " ")


@dataclass(frozen=True)
class Population:
    """A loaded population.

    Attributes
    ----------
    kind : str
        ``synthetic``, ``file``, ``sql`` or ``aggregated``.
    frame : pandas.DataFrame or None
        The case frame (None for an aggregated source).
    aggregated : pandas.DataFrame or None
        For an aggregated source: one row per (attribute, group) with the
        columns ``attribute``, ``group``, ``tp``, ``fp``, ``fn``, ``tn`` (counts;
        NaN where the source suppressed a cell) and ``group_size``.
    source : dict
        A JSON-safe description: kind, path, sheet, rows read, columns, ...
    provenance : dict
        Column -> actor (``applicant``, ``caseworker``, ``system`` or
        ``registry:<name>``).
    inputs : tuple of Path
        Files that were read (hashed into the manifest).
    notes : tuple of str
        Things the loader changed that an auditor should know (e.g. masked
        personnummer).
    bias : dict
        Ground truth of injected biases for a synthetic population.
    circumstances : pandas.DataFrame or None
        The cases' true circumstances, row-aligned with ``frame`` and with
        its columns: a synthetic population's values before any bias knob
        acted, or a file's ``true_<column>`` columns
        (:func:`audit.attribution.split_true_columns`); None when unknown.
    """

    kind: str
    frame: pd.DataFrame | None
    aggregated: pd.DataFrame | None
    source: dict[str, Any]
    provenance: dict[str, str] = field(default_factory=dict)
    inputs: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    bias: dict[str, Any] = field(default_factory=dict)
    circumstances: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        """Number of cases (for an aggregated source: the sum of group sizes of one attribute)."""
        if self.frame is not None:
            return len(self.frame)
        assert self.aggregated is not None
        first = self.aggregated["attribute"].iloc[0] if len(self.aggregated) else None
        return int(self.aggregated.loc[self.aggregated["attribute"] == first, "group_size"].sum())


# ---------------------------------------------------------------------------
# reading files


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: cannot decode the file as UTF-8 or cp1252. Expected a text CSV export.")


def _refuse_binary(sample: str, path: Path) -> None:
    """Refuse a file whose first characters hold NUL bytes: a binary file or UTF-16 text, not a CSV export."""
    if "\x00" in sample:
        raise DataError(f"{path}: holds NUL bytes, so it is not a text CSV export (a binary file, or UTF-16 text). "
                        "Expected a CSV file in UTF-8 or cp1252.")


def _read_csv(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    raw = path.read_bytes()
    text, encoding = _decode(raw, path)
    sample = text[:65536]
    _refuse_binary(sample, path)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
    # Swedish exports use ';' as separator and ',' as decimal mark.
    decimal = "," if delimiter == ";" else "."
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            decimal=decimal,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse as CSV with delimiter {delimiter!r}: {exc}") from None
    header = next(csv.reader(io.StringIO(text[: text.find("\n") + 1 or len(text)]), delimiter=delimiter), [])
    check_headers(header, path)
    frame = _infer_types(frame, decimal=decimal)
    return frame, {"encoding": encoding, "delimiter": delimiter, "decimal": decimal}


@dataclass(frozen=True)
class ColumnEvidence:
    """What a column's text cells say about its type; the evidence of two parts of a column adds up.

    A file's column is read as text and becomes a number, a truth value or
    text by what *all* its cells look like (:func:`_decide`). A chunked run
    reads a file a part at a time; collecting this evidence over every part
    first and deciding once gives every part exactly the type the whole
    column gets when the file is read at once.
    """

    values: int = 0
    missing: bool = False
    numeric: bool = True
    integral: bool = True
    codes: bool = False
    too_long: bool = False
    boolean: bool = True

    def __add__(self, other: ColumnEvidence) -> ColumnEvidence:
        return ColumnEvidence(values=self.values + other.values, missing=self.missing or other.missing,
                              numeric=self.numeric and other.numeric, integral=self.integral and other.integral,
                              codes=self.codes or other.codes, too_long=self.too_long or other.too_long,
                              boolean=self.boolean and other.boolean)


def _prepared(s: pd.Series, decimal: str) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(text with missing cells as NaN, the missing mask, the non-missing cells, their numbers or NaN)."""
    s = s.astype("str")
    missing = s.isin(_MISSING_TOKENS) | s.str.fullmatch(r"\s*")
    s = s.where(~missing)
    nonmissing = s.dropna()
    return s, missing, nonmissing, pd.to_numeric(_numeric_text(nonmissing, decimal), errors="coerce")


def column_evidence(frame: pd.DataFrame, *, decimal: str) -> dict[str, ColumnEvidence]:
    """The type evidence of every column of a frame of text cells (one part of a file, or all of it)."""
    out = {}
    for col in frame.columns:
        _, missing, nonmissing, numeric = _prepared(frame[col], decimal)
        is_numeric = bool(numeric.notna().all())
        out[col] = ColumnEvidence(
            values=len(nonmissing), missing=bool(missing.any()), numeric=is_numeric,
            integral=bool((numeric.dropna() % 1 == 0).all()) if is_numeric else False,
            codes=_looks_like_codes(nonmissing) if len(nonmissing) else False,
            too_long=_too_long_for_numbers(_numeric_text(nonmissing, decimal)) if len(nonmissing) else False,
            boolean=bool(nonmissing.str.lower().isin(["true", "false"]).all()),
        )
    return out


def _numeric_text(nonmissing: pd.Series, decimal: str) -> pd.Series:
    """The cells as a number parser reads them: no (non-breaking) spaces, ``.`` as the decimal mark."""
    candidate = nonmissing.str.replace("\u00a0", "", regex=False).str.replace(" ", "", regex=False)
    if decimal == ",":
        candidate = candidate.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return candidate


def _decide(ev: ColumnEvidence) -> str:
    """The type of a column from all its evidence: ``int``, ``float``, ``bool`` or ``str``."""
    if ev.values and ev.numeric and not ev.codes and not ev.too_long:
        return "int" if ev.integral and not ev.missing else "float"
    if ev.values and ev.boolean and not ev.missing:
        return "bool"
    return "str"


def _convert(s: pd.Series, kind: str, decimal: str) -> pd.Series:
    """A column of text cells in the type :func:`_decide` chose."""
    text, _, _, numeric = _prepared(s, decimal)
    if kind in ("int", "float"):
        full = pd.Series(np.nan, index=text.index, dtype="float64")
        full.loc[numeric.index] = numeric.astype("float64")
        return full.astype("int64") if kind == "int" else full
    if kind == "bool":
        return text.str.lower().eq("true")
    return text.astype("str")


def _infer_types(frame: pd.DataFrame, *, decimal: str,
                 kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """Turn blank cells into missing values and numeric-looking columns into numbers.

    ``kinds`` (column -> type) is given when the evidence came from the whole
    file but ``frame`` is one part of it (a chunked run).
    """
    if kinds is None:
        kinds = {col: _decide(ev) for col, ev in column_evidence(frame, decimal=decimal).items()}
    return pd.DataFrame({col: _convert(frame[col], kinds[col], decimal) for col in frame.columns}, index=frame.index)


def _too_long_for_numbers(values: pd.Series) -> bool:
    """Values with more than 15 significant digits (long ids) stay text: a float64 cannot hold them exactly."""
    digits = values.str.replace(r"^[+-]?0*|\.|[eE].*$", "", regex=True)
    return bool((digits.str.len() > 15).any())


def check_headers(header: list[str], path: Path) -> None:
    """Raise a :class:`DataError` when a column name repeats or is blank (a reader would rename it silently)."""
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(f"{path}: the column name {name!r} appears twice in the header (columns {seen[name] + 1} "
                            f"and {i + 1}). Expected each column name once.")
        seen[name] = i


def max_file_bytes() -> int:
    """The largest input file read, in bytes: ``INSYN_MAX_FILE_BYTES`` or :data:`MAX_FILE_BYTES`."""
    raw = os.environ.get(MAX_FILE_ENV, "")
    return int(raw) if raw.isdigit() else MAX_FILE_BYTES


def _looks_like_codes(values: pd.Series) -> bool:
    """Identifiers with leading zeros (municipality codes, case numbers) stay text."""
    return bool(values.str.match(r"^0\d").any())


def read_table(path: str | Path, *, sheet: str | int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV, Parquet or Excel file into a frame.

    Parameters
    ----------
    path : str or Path
        The file; the format follows its suffix (``.csv``, ``.txt``, ``.tsv``,
        ``.parquet``, ``.pq``, ``.xlsx``, ``.xlsm``).
    sheet : str or int, optional
        Excel only: the sheet to read (default: the first).

    Returns
    -------
    (frame, info)
        The frame, with blank cells as missing values, and a dict describing
        how it was read (encoding, delimiter, sheet).

    Raises
    ------
    DataError
        When the file is missing, has an unknown suffix, or cannot be parsed;
        for Excel, when the sheet does not exist (the message lists the sheets).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file. Expected a CSV, Parquet or Excel file.")
    size, limit = p.stat().st_size, max_file_bytes()
    if size > limit:
        raise DataError(f"{p}: the file has {size:,} bytes. Expected at most {limit:,} (set {MAX_FILE_ENV} to "
                        "raise the limit, or split the file).")
    suffix = p.suffix.lower()
    if suffix in {".csv", ".txt", ".tsv"}:
        return _read_csv(p)
    if suffix in {".parquet", ".pq"}:
        try:
            frame = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types
            raise DataError(f"{p}: cannot read as Parquet: {exc}") from None
        return _blank_to_missing(frame), {}
    if suffix in {".xlsx", ".xlsm"}:
        book, chosen = _excel_sheet(p, sheet)
        frame = pd.read_excel(book, sheet_name=chosen, dtype=str, keep_default_na=False)
        first = pd.read_excel(book, sheet_name=chosen, header=None, nrows=1, dtype=str, keep_default_na=False)
        check_headers([str(c).strip() for c in first.iloc[0].tolist()] if len(first) else [], p)
        frame.columns = [str(c).strip() for c in frame.columns]
        return _infer_types(frame, decimal="."), {"sheet": chosen}
    raise DataError(
        f"{p}: unknown file type {suffix!r}. Expected .csv, .tsv, .txt, .parquet, .pq, .xlsx or .xlsm."
    )


def csv_dialect(path: Path) -> tuple[str, str, str]:
    """(encoding, delimiter, decimal mark) of a CSV file, found as :func:`_read_csv` finds them, without reading it whole.

    The file is UTF-8 when every byte of it decodes as UTF-8 (checked block
    by block), else cp1252; the delimiter is sniffed from its first 65,536
    characters.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    encoding = "utf-8-sig"
    with path.open("rb") as fh:
        try:
            while block := fh.read(1 << 24):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = "cp1252"
    if encoding == "cp1252":
        cp = codecs.getincrementaldecoder("cp1252")()
        with path.open("rb") as fh:
            try:
                while block := fh.read(1 << 24):
                    cp.decode(block)
            except UnicodeDecodeError:
                raise DataError(f"{path}: cannot decode the file as UTF-8 or cp1252. Expected a text CSV export.") \
                    from None
    with path.open("r", encoding=encoding, newline="") as fh:
        sample = fh.read(65536)
    _refuse_binary(sample, path)
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
    header = next(csv.reader(io.StringIO(sample[: sample.find("\n") + 1 or len(sample)]), delimiter=delimiter), [])
    check_headers(header, path)
    return encoding, delimiter, "," if delimiter == ";" else "."


def _text_parts(path: Path, chunk_size: int, sheet: str | int | None) -> tuple[Callable[[], Iterator[pd.DataFrame]],
                                                                               str, dict[str, Any]]:
    """A function that yields a file's parts as frames of text cells, the file's decimal mark, and how it is read."""
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt", ".tsv"}:
        encoding, delimiter, decimal = csv_dialect(path)

        def csv_parts() -> Iterator[pd.DataFrame]:
            try:
                yield from pd.read_csv(path, sep=delimiter, decimal=decimal, dtype=str, keep_default_na=False,
                                       skipinitialspace=False, encoding=encoding, chunksize=chunk_size)
            except (pd.errors.ParserError, ValueError) as exc:
                raise DataError(f"{path}: cannot parse as CSV with delimiter {delimiter!r}: {exc}") from None

        return csv_parts, decimal, {"encoding": encoding, "delimiter": delimiter, "decimal": decimal}
    book, chosen = _excel_sheet(path, sheet)
    first = pd.read_excel(book, sheet_name=chosen, header=None, nrows=1, dtype=str, keep_default_na=False)
    check_headers([str(c).strip() for c in first.iloc[0].tolist()] if len(first) else [], path)

    def excel_parts() -> Iterator[pd.DataFrame]:
        start = 0
        while True:  # openpyxl streams the sheet; each part skips the rows before it
            part = pd.read_excel(book, sheet_name=chosen, dtype=str, keep_default_na=False,
                                 skiprows=range(1, start + 1), nrows=chunk_size)
            if not len(part):
                return
            part.columns = [str(c).strip() for c in part.columns]
            part.index = pd.RangeIndex(start, start + len(part))
            yield part
            if len(part) < chunk_size:
                return
            start += len(part)

    return excel_parts, ".", {"sheet": chosen}


def iter_table(path: str | Path, chunk_size: int, *, sheet: str | int | None = None) -> Iterator[pd.DataFrame]:
    """Read a CSV or Excel file a part of ``chunk_size`` rows at a time, typed as :func:`read_table` types it whole.

    A file is read as text and each column becomes a number, a truth value or
    text by what all its cells look like. So that every part gets the type the
    whole column gets, the file is read twice: first every part's
    :class:`ColumnEvidence` is summed and each column's type decided, then the
    parts are read again and converted. Only one part is in memory at a time
    (and no size limit applies: memory is bounded by ``chunk_size``). Parquet
    files carry their types and are read by record batches elsewhere.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.txt``, ``.tsv``, ``.xlsx`` or ``.xlsm`` file.
    chunk_size : int
        Rows per part.
    sheet : str or int, optional
        Excel only: the sheet (default: the first).

    Yields
    ------
    pandas.DataFrame
        The parts, in file order, indexed by row number in the file.

    Raises
    ------
    DataError
        As :func:`read_table`: a missing file, an unknown suffix, an encoding
        or a CSV that cannot be parsed, a missing sheet, a repeated column name.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file. Expected a CSV or Excel file.")
    if p.suffix.lower() not in {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}:
        raise DataError(f"{p}: unknown file type {p.suffix.lower()!r} for reading in parts. Expected .csv, .tsv, "
                        ".txt, .xlsx or .xlsm (Parquet is read by record batches).")
    parts, decimal, _info = _text_parts(p, chunk_size, sheet)
    evidence: dict[str, ColumnEvidence] = {}
    for part in parts():
        for col, ev in column_evidence(part, decimal=decimal).items():
            evidence[col] = evidence[col] + ev if col in evidence else ev
    kinds = {col: _decide(ev) for col, ev in evidence.items()}
    for part in parts():
        yield _infer_types(part, decimal=decimal, kinds=kinds)


def _excel_sheet(p: Path, sheet: str | int | None) -> tuple[Any, str]:
    """The open workbook and the name of the sheet to read; DataError naming the sheets when it does not exist."""
    try:
        book = pd.ExcelFile(p, engine="openpyxl")
    except Exception as exc:
        raise DataError(f"{p}: cannot open as an Excel workbook: {exc}") from None
    names = list(book.sheet_names)
    if sheet is None:
        return book, names[0]
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise DataError(
                f"{p}: sheet index {sheet} does not exist. Expected 0..{len(names) - 1} (sheets: {', '.join(names)})."
            )
        return book, names[sheet]
    if sheet not in names:
        raise DataError(f"{p}: no sheet named {sheet!r}. Sheets: {', '.join(repr(n) for n in names)}.")
    return book, sheet


def _blank_to_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that are empty or only whitespace become missing (as a SQL source is read)."""
    out = frame
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_string_dtype(s) or s.dtype == object:
            blank = s.astype("str").str.fullmatch(r"\s*") & s.notna()
            if blank.any():
                if out is frame:
                    out = frame.copy()
                out[col] = s.where(~blank)
    return out


def _read_sql(query: str, url: str, base_dir: Path) -> tuple[pd.DataFrame, dict[str, Any], list[Path]]:
    inputs: list[Path] = []
    if url.startswith("duckdb:///"):
        import duckdb

        raw = url.removeprefix("duckdb:///")
        db = Path(raw) if Path(raw).is_absolute() else (base_dir / raw)
        if not db.is_file():
            raise DataError(f"{url}: no such DuckDB file ({db}).")
        try:
            con = duckdb.connect(str(db), read_only=True)
        except Exception as exc:
            raise DataError(f"{db}: cannot open the DuckDB file read-only: {exc}") from None
        try:
            frame = con.sql(query).to_arrow_table().to_pandas()
        except Exception as exc:
            raise DataError(f"{db}: the query failed: {exc}. Query: {query}") from None
        finally:
            con.close()
        inputs.append(db)
    else:
        import sqlalchemy as sa

        try:
            engine = sa.create_engine(url)
            with engine.connect() as con:
                frame = pd.read_sql_query(sa.text(query), con)
        except Exception as exc:
            raise DataError(f"{url}: the query failed: {exc}. Query: {query}") from None
    return _blank_to_missing(frame), {"query": query}, inputs


blank_to_missing = _blank_to_missing
"""Public name of the blank-to-missing step of a SQL read, for the chunked reader (audit.execution)."""


# ---------------------------------------------------------------------------
# mapping onto the case frame


def apply_mapping(
    frame: pd.DataFrame, spec: PopulationSpec, *, source: str, scrub: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Apply ``rename``, ``recode``, ``derive`` and ``case_id`` from the spec.

    Parameters
    ----------
    frame : pandas.DataFrame
        The frame as read.
    spec : PopulationSpec
        The population section of the audit spec.
    source : str
        The file or URL, named in error messages.
    scrub : bool, default True
        Look for personal identity numbers (skipped for generated data,
        which cannot hold any).

    Returns
    -------
    (frame, notes)

    Raises
    ------
    DataError
        When a mapped column is missing, a value has no recode, or case ids
        are missing or duplicated; every problem is collected first.
    """
    notes: list[str] = []
    missing = [c for c in spec.rename if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: population.rename names the column {missing[0]!r}, which is not in the data. "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    targets = list(spec.rename.values())
    clash = [t for t in targets if targets.count(t) > 1 or (t in frame.columns and t not in spec.rename)]
    if clash:
        raise DataError(
            f"{source}: population.rename maps onto {clash[0]!r}, which is already a column of the data or the "
            f"target of another rename. Expected each new name once and not already in use "
            f"(drop or rename the existing {clash[0]!r} first). Columns: {', '.join(map(str, frame.columns))}."
        )
    out = frame.rename(columns=spec.rename)
    out, unmapped = _recode(out, spec.recode, rename=spec.rename, source=source)
    if unmapped:
        raise _recode_error(source, unmapped)
    # case_id
    if spec.case_id == "row_number":
        out = out.copy()
        out.insert(0, "case_id", pd.Series(np.arange(1, len(out) + 1), index=out.index).astype("str"))
    else:
        if spec.case_id not in out.columns:
            raise DataError(
                f"{source}: population.case_id names the column {spec.case_id!r}, which is not in the data. "
                f"Columns: {', '.join(map(str, out.columns))}. Use case_id: row_number to number rows."
            )
        ids = out[spec.case_id]
        if ids.isna().any():
            pos = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise DataError(
                f"{source}: column {spec.case_id!r} (case_id) is empty in row {pos + 1}. Every case needs an id."
            )
        ids = ids.astype("str")
        dup = pd.Series(False, index=ids.index) if is_unique(ids) else ids.duplicated(keep=False)
        if dup.any():
            values = pd.unique(ids[dup])
            shown = ", ".join(repr(v) if not looks_like_personnummer(pd.Series([v])).iloc[0] else "'<personnummer>'" for v in values[:5])
            duplicates = FailureCollector(source, what="the case ids")
            duplicates.add(
                CheckCode.UNIQUE, column=spec.case_id, reason="duplicated case_id",
                line=f"{source}: column {spec.case_id!r} (case_id) has {int(dup.sum())} rows with duplicated values "
                     f"({len(values)} distinct), e.g. {shown}. Expected one row per case.",
            )
            duplicates.raise_if_any()
        out = out.drop(columns=[spec.case_id])
        out.insert(0, "case_id", text_values(ids))  # the ids' own str array: no Python string per id
    pnr = looks_like_personnummer(out["case_id"]) if scrub else pd.Series(False, index=out.index)
    if pnr.any():  # id by id, so that a chunked run (which sees a chunk at a time) gives every case the same id
        ids = out["case_id"].astype("object").copy()
        ids[pnr.to_numpy()] = pseudonymise(out.loc[pnr.to_numpy(), "case_id"], key=pseudonym_key()).to_numpy()
        out["case_id"] = pd.Series(ids.to_numpy(), index=out.index, dtype="str")
        if out["case_id"].duplicated().any():  # pragma: no cover - a raw id equal to a 100-bit pseudonym
            raise DataError(f"{source}: a case id equals the pseudonym of another case's personal identity number. "
                            "Expected ids that do not begin with 'p-' followed by 20 letters and digits.")
        notes.append(
            f"case_id held personal identity numbers in {int(pnr.sum())} rows; they were replaced by pseudonyms."
        )
    out, masked = mask_text_columns(out, skip=("case_id",)) if scrub else (out, [])
    if masked:
        notes.append(f"personal identity numbers were masked in column(s): {', '.join(masked)}.")
    # In the case frame "" in child_ages means "no children"; a file can only
    # write that as a blank cell, which the readers turned into a missing value.
    if "child_ages" in out.columns and out["child_ages"].isna().any():
        out["child_ages"] = out["child_ages"].astype("str").where(out["child_ages"].notna(), "")
        notes.append("blank child_ages cells were read as '' (no children), the case frame's convention.")
    # derive
    for name, d in spec.derive.items():
        out[name] = _derive(out, name, d, source)
    return out.reset_index(drop=True), notes


def _recode(
    frame: pd.DataFrame,
    recode: dict[str, dict[str, Any]],
    *,
    rename: dict[str, str],
    source: str = "",
    rows: np.ndarray | None = None,
) -> tuple[pd.DataFrame, FailureCollector]:
    """Apply ``population.recode`` column by column; collect every unmapped value.

    Returns the recoded frame and a collector with one failure per (column,
    value) that has no recode and no ``"*"`` fallback (at most 20 per
    column), with the extra columns ``row`` (the 1-based data row where it
    first occurs, the header not counted; ``rows`` maps positions in
    ``frame`` to data rows when some rows were left out) and
    ``source_column``.
    """
    unmapped_values = FailureCollector(source, what="population.recode")
    origin = {new: old for old, new in rename.items()}
    out = frame
    for col, mapping in recode.items():
        if col not in out.columns:
            raise DataError(
                f"{source}: population.recode names the column {col!r}, which is not in the data "
                f"(after rename). Columns: {', '.join(map(str, out.columns))}."
            )
        s = out[col]
        keys = {str(k): v for k, v in mapping.items() if k != "*"}
        as_text = s.astype("str").where(s.notna())
        mapped = as_text.map(keys)
        unmapped = (s.notna() & ~as_text.isin(list(keys))).to_numpy()
        if "*" in mapping:
            mapped = mapped.where(~unmapped, mapping["*"])
        elif unmapped.any():
            positions = np.flatnonzero(unmapped)
            first_rows = pd.Series(positions, index=as_text.to_numpy()[positions]).groupby(level=0, sort=False).min()
            for value, pos in list(first_rows.items())[:20]:
                unmapped_values.add(
                    CheckCode.UNMAPPED,
                    column=col,
                    value=value,
                    reason=f"no recode for this value; known: {', '.join(keys)}",
                    row=int(pos) + 1 if rows is None else int(rows[pos]),
                    source_column=origin.get(col, col),
                )
            continue
        if out is frame:
            out = frame.copy()
        values = list(mapped.dropna().unique())
        if values and all(isinstance(v, (bool, np.bool_)) for v in values):
            out[col] = mapped.astype(bool) if not mapped.isna().any() else mapped.astype("boolean")
        elif values and all(isinstance(v, str) for v in values):
            out[col] = mapped.astype("str").where(mapped.notna())
        else:
            out[col] = mapped
    return out, unmapped_values


def _recode_error(source: str, unmapped: FailureCollector) -> DataError:
    """One error for every unmapped value; the message names the first and counts the rest."""
    table = unmapped.table()
    first = table.iloc[0]
    where = f"first in data row {first['row']}"
    if first["source_column"] != first["column"]:
        where = f"source column {first['source_column']!r}, {where}"
    return DataError(
        f"{source}: column {first['column']!r} has the value {first['value']!r}, which population.recode "
        f"does not map ({first['reason']}; {where}). Add it to recode or use '*' for every other value."
        + (f" ({len(table)} unmapped values in all.)" if len(table) > 1 else ""),
        failures=table,
    )


def _numbers(values: pd.Series, column: str, name: str, source: str) -> pd.Series:
    """``values`` as numbers for binning; text that is not a number is an error, never a '(missing)' group."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        raise DataError(f"{source}: population.derive.{name} bins the column {column!r}, which holds "
                        f"{values.dtype} values. Expected numbers.")
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any():
        shown = ", ".join(repr(str(v)) for v in pd.unique(values[bad])[:3])
        raise DataError(f"{source}: population.derive.{name} bins the column {column!r}, but {int(bad.sum())} "
                        f"value(s) are not numbers, e.g. {shown}. Expected numbers (blank cells are missing).")
    return num


def _derive(frame: pd.DataFrame, name: str, d: Any, source: str) -> pd.Series:
    def need(col: str) -> pd.Series:
        if col not in frame.columns:
            raise DataError(
                f"{source}: population.derive.{name} uses the column {col!r}, which is not in the data. "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
        return frame[col]

    if d.quantile_bins is not None:
        qb = d.quantile_bins
        s = _numbers(need(qb.column), qb.column, name, source)
        try:
            binned = pd.qcut(s, q=qb.q, labels=qb.labels, duplicates="raise")
        except ValueError as exc:
            raise DataError(
                f"{source}: population.derive.{name}: cannot cut {qb.column!r} at quantiles {qb.q}: {exc}."
            ) from None
        return _bin_labels(binned)
    if d.bins is not None:
        b = d.bins
        s = _numbers(need(b.column), b.column, name, source)
        binned = pd.cut(s, bins=b.edges, labels=b.labels, include_lowest=True)
        return _bin_labels(binned)
    if d.count_items is not None:
        s = need(d.count_items).astype("str").where(need(d.count_items).notna(), "")
        return s.str.split(";").map(lambda items: sum(1 for i in items if i.strip())).astype("int64")
    assert d.equals is not None
    ((col, value),) = d.equals.items() if len(d.equals) == 1 else (_raise_equals(name, source),)
    return need(col).astype("str").eq(str(value))


def _bin_labels(binned: pd.Series) -> pd.Series:
    """A binned (categorical) column as ``str`` labels, missing outside the bins: one label per bin, not per case."""
    labels = [str(c) for c in binned.cat.categories]
    codes = binned.cat.codes.to_numpy()
    return pd.Series(coded_strings(np.where(codes < 0, len(labels), codes), [*labels, None]), index=binned.index)


def _raise_equals(name: str, source: str) -> Any:
    raise SpecError(f"{source}: population.derive.{name}.equals must name exactly one column and value.")


# ---------------------------------------------------------------------------
# aggregated tables


def _load_aggregated(
    spec: PopulationSpec, path: Path, *, shown: str, spec_source: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a published per-group confusion table into counts.

    Every problem is reported with the file (and sheet), the column, the value
    and the group it belongs to. Blank cells are suppressed cells and stay
    NaN: they are never filled in from the other cells, which would undo the
    suppression.
    """
    for key in ("rename", "derive"):
        if getattr(spec, key):
            raise SpecError(
                f"{spec_source}: population.{key} does not apply to an aggregated source (a table of counts, "
                "not cases). Name the table's columns in attribute, group, cells and group_size, and map "
                "labels with recode."
            )
    if spec.case_id != "case_id":
        raise SpecError(
            f"{spec_source}: population.case_id does not apply to an aggregated source (a table of counts, "
            f"not cases). Got {spec.case_id!r}."
        )
    frame, info = read_table(path, sheet=spec.sheet)
    source = shown + (f" (sheet {info['sheet']!r})" if "sheet" in info else "")
    assert spec.cells is not None and spec.attribute and spec.group
    for key, value in (spec.where or {}).items():
        if key not in frame.columns:
            raise DataError(
                f"{source}: population.where names the column {key!r}, which is not in the table. "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    keep = pd.Series(True, index=frame.index)
    for key, value in (spec.where or {}).items():
        keep &= frame[key].astype("str").eq(str(value)).to_numpy()
    if not keep.any():
        seen = "; ".join(
            f"{key}: {', '.join(repr(v) for v in pd.unique(frame[key].dropna().astype('str'))[:10])}"
            for key in (spec.where or {})
        )
        raise DataError(
            f"{source}: no rows are left after population.where {spec.where}. Values in the table: {seen}."
        )
    frame = frame.loc[keep.to_numpy()]
    needed = {"attribute": spec.attribute, "group": spec.group, **spec.cells.model_dump()}
    if spec.group_size:
        needed["group_size"] = spec.group_size
    for role, col in needed.items():
        if col not in frame.columns:
            raise DataError(
                f"{source}: population.{'cells.' + role if role in ('tp', 'fp', 'fn', 'tn') else role} names the "
                f"column {col!r}, which is not in the table. Columns: {', '.join(map(str, frame.columns))}."
            )
    raw_labels = frame[[spec.attribute, spec.group]].astype("str").to_numpy()
    rows = frame.index.to_numpy() + 1  # data rows, header not counted

    def label(i: int) -> str:
        return f"{raw_labels[i, 0]}={raw_labels[i, 1]}"

    def where_(i: int) -> str:
        return f"{label(i)} (data row {rows[i]})"

    for role, col in (("attribute", spec.attribute), ("group", spec.group)):
        blank = frame[col].isna().to_numpy()
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            raise DataError(
                f"{source}: column {col!r} (population.{role}) is blank in data row {rows[i]}. "
                f"Expected the name of the {'sensitive attribute' if role == 'attribute' else 'group'}."
            )
    if spec.recode:
        # positions among the kept rows; report the file's data rows
        frame, unmapped = _recode(frame, spec.recode, rename={}, source=source, rows=rows)
        if unmapped:
            raise _recode_error(source, unmapped)
    out = pd.DataFrame(
        {
            "attribute": frame[spec.attribute].astype("str").to_numpy(),
            "group": frame[spec.group].astype("str").to_numpy(),
        }
    )
    dup = out.duplicated(["attribute", "group"], keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{source}: the group {where_(i)} appears more than once"
            + (f" after population.where {spec.where}" if spec.where else "")
            + ". Expected one row per attribute and group; narrow the rows with population.where."
        )

    markers = DEFAULT_SUPPRESSION_MARKERS if spec.suppressed is None else tuple(spec.suppressed)
    suppressed_at_source: list[dict[str, Any]] = []

    def numeric(col: str, what: str) -> np.ndarray:
        raw = frame[col]
        if what == "group_size":
            text = raw.astype("str").str.replace("\u00a0", "", regex=False).str.replace(" ", "", regex=False)
            text = text.str.replace(",", ".", regex=False).where(raw.notna())
            num = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
            bad = raw.notna().to_numpy() & ~np.isfinite(num)
        else:
            parsed = parse_cells(raw, markers=markers)
            num, bad = parsed.values, parsed.bad
            for i in np.flatnonzero(parsed.suppressed):
                bound = float(parsed.bound[i])
                suppressed_at_source.append({
                    "attribute": str(out["attribute"].iloc[i]), "group": str(out["group"].iloc[i]),
                    "cell": what.removeprefix("cells."), "column": col, "marker": str(parsed.marker[i]),
                    "upper_bound": None if bound != bound else bound,
                    "text": describe_bound(bound, str(parsed.marker[i]))})
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "infinite" if np.isinf(num[i]) else "non-numeric"  # '1e400' is a number too large to hold
            raise DataError(
                f"{source}: column {col!r} ({what}) has the {kind} value {show_value(raw.iloc[i])} for {where_(i)}. "
                + ("Expected a count of cases." if what == "group_size" else
                   "Expected a count, a percentage, or a suppression marker ("
                   + ", ".join(repr(m) for m in markers[:12]) + (", ..." if len(markers) > 12 else "")
                   + " or <k; set population.suppressed to list the markers of this release).")
            )
        neg = num < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise DataError(
                f"{source}: column {col!r} ({what}) has the negative value {num[i]:g} for {where_(i)}. "
                "Expected a number >= 0."
            )
        return num

    cells = np.column_stack([numeric(getattr(spec.cells, c), f"cells.{c}") for c in _CELLS])
    names = [getattr(spec.cells, c) for c in _CELLS]

    def spell(i: int) -> str:
        return " + ".join(
            f"{n} {'blank' if np.isnan(v) else format(v, 'g')}" for n, v in zip(names, cells[i], strict=True)
        )

    size: np.ndarray | None = None
    if spec.group_size:
        size = numeric(spec.group_size, "group_size")
        blank = np.isnan(size)
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            raise DataError(
                f"{source}: column {spec.group_size!r} (group_size) is blank for {where_(i)}. "
                "Expected a count of cases for every group."
            )
        frac = size != np.round(size)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise DataError(
                f"{source}: column {spec.group_size!r} (group_size) has the value {size[i]:g} for {where_(i)}. "
                "Expected a whole number of cases."
            )
    total = np.nansum(cells, axis=1)
    complete = ~np.isnan(cells).any(axis=1)
    if spec.units == "percent":
        assert size is not None
        off = complete & (np.abs(total - 100.0) > 0.5)
        over = ~complete & (total > 100.5)
        if (off | over).any():
            i = int(np.flatnonzero(off | over)[0])
            raise DataError(
                f"{source}: the percentages for {label(i)} add up to {total[i]:g}. "
                + ("Expected 100 (within rounding) for a row with every cell given"
                   if off[i] else "Expected at most 100 for a row with suppressed (blank) cells")
                + f"; got {spell(i)} in data row {rows[i]}."
            )
        out[list(_CELLS)] = np.round(cells / 100.0 * size[:, None])
        out["group_size"] = size
    else:
        frac = ~np.isnan(cells) & (cells != np.round(cells))
        if frac.any():
            i, j = (int(v[0]) for v in np.nonzero(frac))
            raise DataError(
                f"{source}: column {names[j]!r} (cells.{_CELLS[j]}) has the value {cells[i, j]:g} for {where_(i)}. "
                "Expected a whole number of cases with units: count (use units: percent for percentages)."
            )
        if size is not None:
            off = (complete & (np.abs(total - size) > 0.5)) | (~complete & (total > size + 0.5))
            if off.any():
                i = int(np.flatnonzero(off)[0])
                raise DataError(
                    f"{source}: the counts for {label(i)} add up to {total[i]:g}, but column {spec.group_size!r} "
                    f"(group_size) is {size[i]:g}. Expected the cells to add up to the group size"
                    + (" (at most, with suppressed cells)" if not complete[i] else "")
                    + f"; got {spell(i)} in data row {rows[i]}."
                )
        out[list(_CELLS)] = cells
        out["group_size"] = size if size is not None else np.where(complete, total, np.nan)
    info = {**info, "rows_in_file": int(len(keep)), "rows_kept": int(len(out)),
            "suppressed_cells": int(np.isnan(cells).sum()), "suppressed": suppressed_at_source}
    return out, info


_CELLS: tuple[str, ...] = ("tp", "fp", "fn", "tn")


def suppression_notes(suppressed: list[dict[str, Any]]) -> tuple[str, ...]:
    """One plain sentence per group with cells suppressed at the source (``info["suppressed"]``).

    Parameters
    ----------
    suppressed : list of dict
        Rows with ``attribute``, ``group``, ``column`` and ``text`` (e.g.
        ``"fewer than 5"``), as :func:`load_population` records them.

    Returns
    -------
    tuple of str
        E.g. ``"sex=female: cells suppressed at the source: TP fewer than 5, FN suppressed ('NA')."``
    """
    by_group: dict[tuple[str, str], list[str]] = {}
    for row in suppressed:
        by_group.setdefault((row["attribute"], row["group"]), []).append(f"{row['column']} {row['text']}")
    return tuple(f"{a}={g}: cells suppressed at the source: {', '.join(cells)}; metrics that need them are "
                 "not computed for this group." for (a, g), cells in by_group.items())


# ---------------------------------------------------------------------------
# dispatch


def load_population(audit: AuditSpec) -> Population:
    """Load the population that an audit spec names.

    Parameters
    ----------
    audit : AuditSpec
        The audit; ``audit.population`` names the source and the mapping, and
        relative paths resolve against the spec's folder.

    Returns
    -------
    Population

    Raises
    ------
    DataError
        When the data cannot be read or mapped onto the case frame.
    """
    spec = audit.population
    kind = spec.source_kind
    if kind == "synthetic":
        path = audit.resolve(spec.synthetic)  # type: ignore[arg-type]
        if not path.is_file():
            raise SpecError(f"{audit.source or '<spec>'}: population.synthetic names {spec.synthetic!r}, which does not exist ({path}).")
        model = load_population_spec(path)
        drawn = generate_latent(model, n=int(spec.n or 0), seed=audit.seed, bias=spec.bias)
        frame, bias, true = drawn.cases, dict(drawn.bias), drawn.latent[list(drawn.cases.columns)].copy()
        frame.attrs = {}
        if spec.rename or spec.recode or spec.derive:
            frame, _ = apply_mapping(frame, spec, source=str(spec.synthetic), scrub=False)
            true, _ = apply_mapping(true, spec, source=str(spec.synthetic), scrub=False)
        provenance = column_provenance(frame.columns, spec.provenance, derived=spec.derive, base=model.provenance,
                                       where=f"{audit.source or '<spec>'}: population.provenance")
        return Population(
            kind=kind,
            frame=frame,
            aggregated=None,
            source={"kind": kind, "path": spec.synthetic, "n": int(spec.n or 0), "seed": audit.seed,
                    "rows": len(frame), "columns": list(frame.columns)},
            provenance=provenance,
            inputs=(path,),
            bias=bias,
            circumstances=true,
        )
    if kind == "aggregated":
        path = audit.resolve(spec.aggregated)  # type: ignore[arg-type]
        table, info = _load_aggregated(spec, path, shown=str(spec.aggregated),
                                       spec_source=audit.source or "<spec>")
        return Population(
            kind=kind,
            frame=None,
            aggregated=table,
            source={"kind": kind, "path": spec.aggregated, "rows": len(table), **jsonable(info, default=str),
                    "where": spec.where or {}, "units": spec.units},
            inputs=(path,),
            notes=suppression_notes(info.get("suppressed", [])),
        )
    if kind == "file":
        path = audit.resolve(spec.file)  # type: ignore[arg-type]
        raw, info = read_table(path, sheet=spec.sheet)
        shown = f"{spec.file}" + (f" (sheet {info['sheet']!r})" if "sheet" in info else "")
        inputs: list[Path] = [path]
    else:
        raw, info, extra = _read_sql(spec.sql or "", spec.url or "", audit.base_dir)
        shown = spec.url or "<sql>"
        inputs = extra
    rows_read = len(raw)
    frame, notes = apply_mapping(raw, spec, source=shown)
    frame, typed = coerce_case_frame(frame, source=shown)
    frame, circumstances = split_true_columns(frame, source=shown)
    notes = [*notes, *typed]
    # a file or a query does not say who created its columns: what the spec does not declare is "unknown"
    provenance = column_provenance(frame.columns, spec.provenance, derived=spec.derive,
                                   where=f"{audit.source or '<spec>'}: population.provenance")
    return Population(
        kind=kind,
        frame=frame,
        aggregated=None,
        source={"kind": kind, "path": spec.file if kind == "file" else None, "url": spec.url,
                "rows": rows_read, "columns": list(map(str, frame.columns)), **jsonable(info, default=str)},
        provenance=provenance,
        inputs=tuple(inputs),
        notes=tuple(notes),
        circumstances=circumstances,
    )
