"""The study folder: the contract of what a study leaves behind.

::

    DIR/study.json                   the study spec, its points and seeds (resume checks it)
    DIR/runs/<point>-<replicate>.parquet   one per finished run
    DIR/runs/<point>-<replicate>.error.json  one per failed run (removed when a rerun succeeds)
    DIR/study.parquet                every finished run in one tidy table (DuckDB reads it)
    DIR/power.csv                    detection rate with Wilson intervals per factor level
    DIR/failures.csv                 the failed runs and their errors (only when some failed)
    DIR/study.html                   power curves and effect estimates, self-contained

Every run's Parquet file is written to a temporary name in ``runs/`` and
renamed into place (an atomic rename on one file system), so an interrupted
study never leaves a half-written run, and a rerun skips exactly the runs
whose file exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from audit._json import jsonable
from audit.exceptions import SpecError

__all__ = ["StudyFolder"]


class StudyFolder:
    """Paths and atomic writes of one study folder.

    Parameters
    ----------
    root : str or Path
        The folder (created when missing).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    @property
    def manifest(self) -> Path:
        """``study.json``."""
        return self.root / "study.json"

    def prepare(self, manifest: dict[str, Any]) -> None:
        """Create the folder, or check that an existing one belongs to the same study design.

        Raises
        ------
        SpecError
            When the folder holds another study (a different spec, points or
            seeds): resuming it would mix runs of two designs.
        """
        self.runs.mkdir(parents=True, exist_ok=True)
        new = jsonable(manifest)
        if self.manifest.is_file():
            old = json.loads(self.manifest.read_text(encoding="utf-8"))
            if old.get("design_key") != new.get("design_key"):
                raise SpecError(
                    f"{self.root}: the folder holds runs of another study design (study.json differs in its "
                    "spec, points or seeds). Expected the same study to resume; give another --out or remove "
                    "the folder.")
        self.write_text(self.manifest, json.dumps(new, indent=2, sort_keys=True) + "\n")

    def run_path(self, key: str) -> Path:
        """``runs/<key>.parquet``."""
        return self.runs / f"{key}.parquet"

    def error_path(self, key: str) -> Path:
        """``runs/<key>.error.json``."""
        return self.runs / f"{key}.error.json"

    def finished(self) -> set[str]:
        """The keys of the runs whose Parquet file exists."""
        return {p.name.removesuffix(".parquet") for p in self.runs.glob("*.parquet") if not p.name.startswith(".")}

    def write_run(self, key: str, frame: pd.DataFrame) -> Path:
        """Write one run's table atomically and drop an error file left by an earlier failure."""
        path = self.run_path(key)
        tmp = self.runs / f".{key}.parquet.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        self.error_path(key).unlink(missing_ok=True)
        return path

    def write_error(self, key: str, error: dict[str, Any]) -> Path:
        """Record one failed run (its error line and traceback) as ``runs/<key>.error.json``."""
        path = self.error_path(key)
        self.write_text(path, json.dumps(jsonable(error), indent=2, sort_keys=True) + "\n")
        return path

    @staticmethod
    def write_text(path: Path, text: str) -> Path:
        """Write a text file atomically (temporary name, then rename)."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return path

    def combine(self) -> pd.DataFrame:
        """Every finished run in one table (columns united by name), written to ``study.parquet``.

        Runs come in (point, replicate) order and each run's rows in the order of its own file (the metric
        rows in the order of the run's results.json, then its findings).
        """
        import duckdb  # heavy optional-ish library: imported where used

        target = self.root / "study.parquet"
        tmp = self.root / ".study.parquet.tmp"
        files = sorted(self.runs.glob("p*.parquet"))
        if not files:
            frame = pd.DataFrame()
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)
            return frame
        con = duckdb.connect()
        try:
            listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            # DuckDB sorts in parallel and its ORDER BY is not stable: ordering by (point, replicate) alone
            # shuffled a run's rows in about one combine in four. The row number inside each run's file is the
            # third key, so every run keeps the row order of the results contract.
            query = (f"SELECT * EXCLUDE (file_row_number) FROM read_parquet([{listing}], union_by_name = true, "
                     "file_row_number = true) ORDER BY point, replicate, file_row_number")
            con.execute(f"COPY ({query}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
            frame = con.execute(f"SELECT * FROM read_parquet('{str(tmp).replace(chr(39), chr(39) * 2)}')").df()
        finally:
            con.close()
        os.replace(tmp, target)
        return frame
