"""A finished run folder, read back: its spec, its decisions and the cases behind them.

A run folder (``reports/<audit>/<run_id>/``) is evidence: ``manifest.json``
holds the spec as run, its seed and the SHA-256 of every input;
``results.json`` the measured result; ``decisions.parquet`` (a chunked run:
its parts ``decisions/part-*.parquet``) one row per case
with the sensitive columns and the decisions, but not the other columns of
the case, which may be many and personal. Some questions about a finished
run need those columns again: subgroup discovery searches the engine's
features for groups nobody named (``insyn discover RUN_DIR``).

:class:`RunFolder` reads a run folder and reloads its cases from the spec's
own source, then proves they are the run's cases: every input that the
manifest hashed must still hash the same, and every case of the decisions
must come back with the same sensitive values. A synthetic population is
regenerated from its seed; a file or a database query is read again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from audit._columns import DISCOVERED_PREFIX
from audit._paths import sha256_file
from audit.exceptions import DataError, SpecError
from audit.metrics import DiscoveryResult, discover_in_run
from audit.population import load_population
from audit.result import AuditResult
from audit.spec import AuditSpec, load_spec

__all__ = ["RunFolder"]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path.parent}: no {path.name}. Expected a run folder written by insyn run ({what}).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object. Got {type(data).__name__}.")
    return data


def _spec_source(manifest: dict[str, Any], name: str) -> Path | None:
    """The spec file among the manifest's inputs: a YAML file that still hashes the same and names the audit."""
    for key, digest in (manifest.get("inputs") or {}).items():
        path = Path(key)
        if path.suffix not in (".yaml", ".yml") or not path.is_file() or sha256_file(path) != digest:
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and data.get("name") == name and "population" in data:
            return path
    return None


@dataclass(frozen=True)
class RunFolder:
    """A finished run folder.

    Attributes
    ----------
    path : Path
        The folder.
    manifest : dict
        ``manifest.json``.
    result : AuditResult
        ``results.json`` (with ``decisions.parquet``).
    audit : AuditSpec
        The spec as run; relative paths resolve against the spec file's
        folder when the manifest names it and it is unchanged, else against
        the current folder.
    spec_found : bool
        Whether the spec file was found (given, or named by the manifest).
    """

    path: Path
    manifest: dict[str, Any]
    result: AuditResult
    audit: AuditSpec
    spec_found: bool = True

    @classmethod
    def open(cls, path: str | Path, *, spec: str | Path | None = None) -> RunFolder:
        """Read a run folder.

        Parameters
        ----------
        path : str or Path
            The run folder.
        spec : str or Path, optional
            The spec file the run was made with, when the manifest's is not
            found from here; it must hold the very spec of the run.

        Raises
        ------
        DataError
            When a file of the run folder is missing or malformed.
        SpecError
            When ``spec`` is not the spec of the run.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such run folder. Expected a folder written by insyn run.")
        manifest = _read_json(folder / "manifest.json", "the spec, seed and input hashes")
        ran = manifest.get("spec")
        if not isinstance(ran, dict):
            raise DataError(f"{folder / 'manifest.json'}: spec must be the audit spec as run. Got {ran!r}.")
        source = folder / "manifest.json"
        found: Path | None = None
        if spec is not None:
            given = load_spec(spec)
            if given.to_dict() != AuditSpec.from_dict(ran).to_dict():
                raise SpecError(
                    f"{spec}: this is not the spec of the run in {folder}. Expected the spec the run was made "
                    "with (manifest.json holds it)."
                )
            audit = given
        else:
            found = _spec_source(manifest, str(ran.get("name")))
            base = found.parent if found is not None else Path.cwd()
            audit = AuditSpec.from_dict(ran, base_dir=base, source=str(found) if found else str(source))
        result = AuditResult.load(folder)  # refuses a missing, invalid or misshapen results.json by name
        if result.decisions is None:
            raise DataError(f"{folder}: no decisions.parquet (nor decisions/part-*.parquet of a chunked run). "
                            "Expected a run folder written by insyn run.")
        return cls(path=folder, manifest=manifest, result=result, audit=audit,
                   spec_found=spec is not None or found is not None)

    def decisions(self) -> pd.DataFrame:
        """``decisions.parquet``: one row per case."""
        frame = self.result.decisions
        assert frame is not None  # checked by open()
        return frame

    def cases(self) -> pd.DataFrame:
        """The case frame of the run, loaded again from the spec's source and checked against the run.

        Raises
        ------
        DataError
            When the run had no case frame (an aggregated table), an input
            hashes differently than in the manifest, or the cases loaded do
            not match the decisions (a case missing, a sensitive value changed).
        """
        if self.audit.population.aggregated is not None:
            raise DataError(f"{self.path}: the run read an aggregated table; it has no cases to load again.")
        try:
            population = load_population(self.audit)
        except (SpecError, DataError) as exc:
            if self.spec_found:
                raise
            raise type(exc)(
                f"{exc} The run's spec file was not found from {Path.cwd()}, so its relative paths were read "
                "from here; name the spec with --spec (insyn discover) or spec= (RunFolder.open)."
            ) from None
        recorded = self.manifest.get("inputs") or {}
        for p in population.inputs:
            digest = recorded.get(str(p))
            if digest is not None and sha256_file(p) != digest:
                raise DataError(
                    f"{p}: the file changed since the run (its SHA-256 differs from manifest.json). "
                    "Expected the input the run was made with."
                )
        frame = population.frame
        assert frame is not None
        decisions = self.decisions()
        by_id = frame.set_index("case_id")
        absent = ~decisions["case_id"].isin(by_id.index)
        if absent.any():
            raise DataError(
                f"{self.path}: {int(absent.sum())} case(s) of decisions.parquet are not in the population loaded "
                f"again from the spec (first {decisions.loc[absent, 'case_id'].iloc[0]!r}). Expected the run's cases."
            )
        for column in self.audit.sensitive_features:
            if column not in decisions.columns:
                continue
            again = by_id[column].reindex(decisions["case_id"]).astype("str").to_numpy()
            differs = again != decisions[column].astype("str").to_numpy()
            if differs.any():
                raise DataError(
                    f"{self.path}: the population loaded again from the spec differs from the run's in "
                    f"{column!r} for {int(differs.sum())} case(s). Expected the run's cases."
                )
        return frame

    def discover(self, **options: Any) -> DiscoveryResult:
        """Subgroup discovery on the run's decisions, as the run's ``discover:`` section (or defaults) says.

        Parameters
        ----------
        **options
            Keys of the ``discover:`` section that override the run's
            (``outcome``, ``features``, ``max_conditions``, ``min_size``,
            ``bins``, ``top``); ``seed`` overrides the run's seed.

        Returns
        -------
        DiscoveryResult
            Its p-values corrected together with every test of the run
            (except an earlier discovery's): ``correction.family`` is ``run``.
        """
        section = {**(self.audit.to_dict().get("discover") or {}),
                   **{k: v for k, v in options.items() if v is not None and k != "seed"}}
        changes: dict[str, Any] = {"discover": section}
        if options.get("seed") is not None:
            changes["seed"] = options["seed"]
        audit = self.audit.with_options(**changes)
        engine = self.result.engine or {}
        found = discover_in_run(audit, self.cases(), self.decisions(), list(engine.get("features") or []))
        return found.joined_with(self.run_p_values(), method=audit.statistics.correction)

    def run_p_values(self) -> list[float]:
        """The raw p-values of the run's tests (metrics' and stage funnel's), leaving out an earlier discovery's."""
        metrics = [float(r["p_value"]) for r in self.result.metrics
                   if r.get("p_value") is not None and not str(r.get("metric", "")).startswith(DISCOVERED_PREFIX)]
        return metrics + [float(r["p_value"]) for r in (self.result.funnel or ()) if r.get("p_value") is not None]
