"""Subprocess engines: a decision program in any language, over stdin and stdout.

Municipal decision logic does not only live in Python: a Java rule engine, an
R script from an evaluation, a compiled legacy routine. The ``subprocess``
adapter runs such a program once per batch, writes the cases to its standard
input and reads the decisions from its standard output:

``jsonl`` (default)
    one JSON object per line each way: the case's columns in, ``{"case_id",
    "outcome", "amount", "reasons"}`` (plus any extra fields) out;
``csv``
    a CSV file with a header row each way.

A program that exits with a non-zero code fails its batch (and
:func:`audit.engine.run_engine` splits the batch to find the cases that make
it fail); one that overruns ``timeout_s`` is killed and its cases become
errors with reason ``timeout``. ``{python}`` in the command stands for the
Python interpreter that runs Insyn, so a spec can name a Python script
portably.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._paths import sha256_files
from audit.engine._protocol import short_repr
from audit.exceptions import SpecError

__all__ = ["DEFAULT_TIMEOUT_S", "SubprocessEngine"]

DEFAULT_TIMEOUT_S = 600.0
"""Seconds a subprocess engine may take for one batch when the spec sets no ``timeout_s``: a hung program
never hangs the audit (its cases end as errors with reason ``timeout``)."""


class SubprocessEngine:
    """A decision program run as a subprocess.

    Parameters
    ----------
    command : sequence of str
        The program and its arguments, e.g. ``["java", "-jar", "engine.jar"]``
        or ``["{python}", "engine.py"]``.
    format : {"jsonl", "csv"}, default "jsonl"
        How cases and decisions are written (see module docstring).
    timeout_s : float, optional
        Seconds allowed per batch; the program is killed when it overruns
        (default :data:`DEFAULT_TIMEOUT_S`; None also means the default).
    cwd : str or Path, optional
        Folder the program runs in (the spec's folder when built from a spec).
    env : mapping, optional
        Extra environment variables for the program.
    name, version : str, optional
        Shown in reports (default name: the script or program file name).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        format: str = "jsonl",
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        if isinstance(command, str) or not isinstance(command, Sequence) or not command:
            raise SpecError(
                f"engine.command must be a non-empty list such as [java, -jar, engine.jar]. Got {short_repr(command)}."
            )
        if not all(isinstance(part, str) and part for part in command):
            raise SpecError(f"engine.command must hold non-empty strings. Got {short_repr(list(command))}.")
        if format not in {"jsonl", "csv"}:
            raise SpecError(f"engine.format must be one of jsonl, csv. Got {short_repr(format)}.")
        number = not isinstance(timeout_s, bool) and isinstance(timeout_s, (int, float))
        if timeout_s is not None and (not number or timeout_s <= 0):
            raise SpecError(f"engine.timeout_s must be a number > 0. Got {short_repr(timeout_s)}.")
        self.command: list[str] = [sys.executable if part == "{python}" else part for part in command]
        self.format = format
        self.timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s)
        self.cwd = Path(cwd) if cwd is not None else None
        self.env = dict(env or {})
        base = self.cwd or Path.cwd()
        files = [base / part for part in self.command[1:] if not part.startswith("-") and (base / part).is_file()]
        self.definition_hash: str | None = sha256_files(files) if files else None
        shown = files[0].name if files else Path(self.command[0]).name
        self.name: str = name or shown
        default_version = f"sha256:{self.definition_hash[:12]}" if self.definition_hash else "unversioned"
        self.version: str = version or default_version

    def __repr__(self) -> str:
        return f"SubprocessEngine(command={self.command!r}, format={self.format!r})"

    def _write(self, cases: pd.DataFrame) -> bytes:
        if self.format == "csv":
            return cases.to_csv(index=False).encode("utf-8")
        return cases.to_json(orient="records", lines=True, double_precision=15, date_format="iso").encode("utf-8")

    def _read(self, out: str) -> pd.DataFrame:
        if self.format == "csv":
            if not out.strip():
                return pd.DataFrame({"case_id": pd.Series([], dtype="str"), "outcome": pd.Series([], dtype="str")})
            try:
                frame = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise RuntimeError(f"{self.name} wrote output that is not CSV: {exc}") from None
            for col in ("amount", "score"):
                if col in frame.columns:
                    frame[col] = frame[col].replace("", None)
            for col in ("outcome",):
                if col in frame.columns:
                    frame[col] = frame[col].replace("", None)
            return frame
        rows: list[Any] = []
        for lineno, line in enumerate(out.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise RuntimeError(
                    f"{self.name} wrote a line that is not JSON (line {lineno}): {line[:120]!r}"
                ) from None
        rows = [r for r in rows if isinstance(r, dict)]
        frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"case_id": pd.Series([], dtype="str")})
        if "reasons" in frame.columns and frame["reasons"].dtype == object:
            frame["reasons"] = frame["reasons"].map(
                lambda r: ";".join(map(str, r)) if isinstance(r, (list, tuple)) else ("" if r is None else r)
            )
        if "case_id" in frame.columns and len(frame) and frame["case_id"].dtype == object:
            frame["case_id"] = frame["case_id"].map(lambda v: v if v is None else str(v))
        return frame

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Run the program on the cases and read its decisions.

        Raises
        ------
        TimeoutError
            When the program overruns ``timeout_s`` (it is killed).
        RuntimeError
            When it exits with a non-zero code or writes unreadable output.
        """
        if len(cases) == 0:
            return pd.DataFrame(
                {
                    "case_id": pd.Series([], dtype="str"),
                    "outcome": pd.Series([], dtype="str"),
                    "amount": np.array([], dtype=float),
                    "reasons": pd.Series([], dtype="str"),
                }
            )
        env = {**os.environ, **self.env} if self.env else None
        try:
            proc = subprocess.run(
                self.command,
                input=self._write(cases),
                capture_output=True,
                timeout=self.timeout_s,
                cwd=self.cwd,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} did not finish within {self.timeout_s:g} s and was stopped") from None
        except OSError as exc:
            raise SpecError(f"engine.command cannot be started ({' '.join(self.command)}): {exc}.") from None
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise RuntimeError(
                f"{self.name} exited with code {proc.returncode}" + (f": {' | '.join(tail)}" if tail else "")
            )
        return self._read(proc.stdout.decode("utf-8", "replace"))
