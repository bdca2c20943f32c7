"""One counterfactual section: twins per attribute, decided, compared, summarised.

See :mod:`audit.counterfactual` for the method. :func:`run_counterfactual`
is what the runner calls; :class:`CounterfactualResult` is frozen and
renders its own Markdown section and JSON form.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import STATUS_OK
from audit._ids import distinct
from audit._json import jsonable
from audit.counterfactual._pairs import RECORDED_NOTE, decide, direct_twins, plain, text, twin_pairs
from audit.counterfactual._personas import decide_personas
from audit.counterfactual._statistics import FLIP_METRICS, code_changes, empty_codes, metric_blocks
from audit.engine import RecordedEngine
from audit.exceptions import DataError, SpecError
from audit.metrics import MetricBlock, metric_table
from audit._json import jsonable
from audit.spec import CounterfactualSpec, StatisticsSpec
from audit.synth import TIED_FIELDS, PopulationModel, make_twins

__all__ = ["CounterfactualResult", "run_counterfactual"]


@dataclass(frozen=True)
class CounterfactualResult:
    """Results of the counterfactual section of an audit.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Tidy metric rows (columns :data:`audit.metrics.COLUMNS`): one row per
        metric of :data:`FLIP_METRICS`, changed attribute (``attributes`` is
        ``[attribute]``) and group of the attribute's original value, plus
        group ``all``.
    examples : list of dict
        Anonymised pairs whose decision changed, numbered from 1: the changed
        attribute, the tied fields that changed (before and after), the
        decisions before and after. No case id or other value from the data.
    personas : pandas.DataFrame or None
        The paired-persona table (``persona``, ``attribute``, ``value``,
        ``outcome``, ``amount``, ``reasons``, ``status``, ``differs``), or
        None when the spec names no personas.
    codes : pandas.DataFrame
        Reason and routing codes that changed: ``attribute``, ``group``,
        ``code``, ``added`` (pairs where the twin has the code and the
        original not), ``removed``, ``pairs`` (decided pairs of the group).
    attributes : list of dict
        Per attribute: the twin rule, whether the engine sees it, its tied
        fields, how many twins changed each, which the engine sees, counts of
        twins, decided pairs, errors and flips (direct and through proxies),
        and a sentence for the report.
    notes : list of str
        What a reader must know (an engine that cannot decide new cases,
        tied fields that could not be re-drawn, persona columns filled in).
    """

    metrics: pd.DataFrame
    examples: list[dict[str, Any]]
    personas: pd.DataFrame | None
    codes: pd.DataFrame
    attributes: list[dict[str, Any]]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe plain data (NaN becomes None)."""
        return jsonable({
            "metrics": self.metrics.to_dict(orient="records"),
            "attributes": self.attributes,
            "codes": self.codes.to_dict(orient="records"),
            "examples": self.examples,
            "personas": None if self.personas is None else self.personas.to_dict(orient="records"),
            "notes": self.notes,
        })

    def to_markdown(self) -> str:
        """Return the report section as Markdown (values from data are escaped for tables)."""
        out = ["## Counterfactual twins", ""]
        out += [f"> {_md(n)}" for n in self.notes] + ([""] if self.notes else [])
        for info in self.attributes:
            attr = info["attribute"]
            out += [f"### {_md(attr)}", "", _md(info["sentence"]), "",
                    "| group | n | flip rate | to unfavourable | to favourable | mean amount change (SEK) |",
                    "| --- | ---: | --- | --- | --- | --- |"]
            rows = self.metrics[self.metrics["attributes"].map(lambda a, x=attr: list(a) == [x])]
            for group in dict.fromkeys(rows["group"]):
                cells = [_md(group), ""]
                for metric in FLIP_METRICS:
                    r = rows[(rows["group"] == group) & (rows["metric"] == metric)].iloc[0]
                    cells[1] = cells[1] or ("" if math.isnan(r["n"]) else f"{int(r['n'])}")
                    cells.append(_cell(r, percent=metric != "mean_amount_change"))
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        if self.examples:
            out += ["### Example pairs whose decision changed", ""]
            for ex in self.examples:
                change = "; ".join(f"{k}: {v['before']} -> {v['after']}" for k, v in ex["changed"].items())
                out.append(f"{ex['example']}. {_md(change)}: {_md(_decision(ex['before']))} -> "
                           f"{_md(_decision(ex['after']))}")
            out.append("")
        if self.personas is not None:
            out += ["### Paired personas", "", "| persona | varied | value | outcome | amount | reasons |",
                    "| --- | --- | --- | --- | ---: | --- |"]
            for r in self.personas.itertuples(index=False):
                amount = "" if pd.isna(r.amount) else f"{r.amount:,.0f}"
                out.append(f"| {_md(r.persona)} | {_md(r.attribute)} | {_md(r.value)} | {_md(r.outcome)}"
                           f"{' (differs)' if r.differs else ''} | {amount} | {_md(r.reasons)} |")
            out.append("")
        return "\n".join(out)


def run_counterfactual(
    cases: pd.DataFrame,
    *,
    spec: CounterfactualSpec,
    engine: Any,
    features: Sequence[str],
    labels: Sequence[str],
    favourable: Sequence[str],
    sensitive_features: Sequence[str],
    statistics: StatisticsSpec,
    seed: int,
    base_decisions: pd.DataFrame,
    base_dir: Path,
    source: str = "<spec>",
    reference_groups: Mapping[str, str] | None = None,
    population: str | Path | PopulationModel | None = None,
    batch_size: int | None = None,
    workers: int = 1,
    correct: bool = True,
) -> CounterfactualResult:
    """Decide counterfactual twins and paired personas with the engine under audit.

    Parameters
    ----------
    cases : pandas.DataFrame
        The live (non-quarantined) cases, with their sensitive columns.
    spec : audit.spec.CounterfactualSpec
        ``attributes`` to change in turn, optional ``personas`` file,
        ``examples`` (how many example pairs to keep per attribute).
    engine : audit.engine.Engine
        The engine under audit.
    features : sequence of str
        The columns the engine sees (with ``case_id``).
    labels : sequence of str
        The outcome labels the engine may use.
    favourable : sequence of str
        Outcomes that are favourable to the applicant (``grant``, ``partial``).
    sensitive_features : sequence of str
        The audit's sensitive features; other attributes are reported as
        chosen proxies.
    statistics : audit.spec.StatisticsSpec
        ``min_group_size``, ``alpha`` and ``correction``.
    seed : int
        Seed of the twins' new values and re-draws, and of the examples.
    base_decisions : pandas.DataFrame
        The engine's decisions on ``cases``: ``case_id``, ``outcome``,
        ``amount``, ``reasons``, ``status``.
    base_dir : Path
        The spec's folder; ``spec.personas`` resolves against it.
    source : str, default "<spec>"
        The spec file, shown first in error messages.
    reference_groups : mapping, optional
        Attribute -> reference group for comparisons (default: the largest).
    population : str, Path or PopulationModel, optional
        Population spec whose conditional distributions re-draw tied fields
        (default: the one shipped with Insyn).
    batch_size : int, optional
        Cases per engine call (``engine.batch_size``; default: all at once).
    workers : int, default 1
        Worker processes for slow per-case engines (``engine.workers``).
    correct : bool, default True
        Correct the p-values of the section together and size its minimum
        detectable differences for them. False leaves both to
        :func:`audit.metrics.correct_family`, which does them once for every
        test of the run (the metrics table then has the extra column ``mdd_se``).

    Returns
    -------
    CounterfactualResult

    Raises
    ------
    SpecError
        An attribute that is not a column of the cases or has a single value;
        a personas file that is missing or malformed.
    DataError
        ``base_decisions`` lacks a column, repeats a case or decides none of
        the cases, or ``features`` names a column the cases lack. Cases
        without a base decision (quarantined before the engine) are left out
        with a note.
    """
    cols = [str(f) for f in features]
    missing = [f for f in cols if f not in cases.columns]
    if missing:
        raise DataError(f"{source}: the engine's features name {missing[0]!r}, which is not a column of the cases.")
    if "case_id" not in cols:
        cols = ["case_id", *cols]
    notes: list[str] = [RECORDED_NOTE] if isinstance(engine, RecordedEngine) else []
    cases, left_out = _with_base_decision(cases, base_decisions, source)
    if left_out:
        notes.append(f"{left_out} cases had no decision of the engine (quarantined before it) and were left out "
                     "of the counterfactual tests.")
    attributes = _check_attributes(cases, spec, source)
    base = _align_base(cases, base_decisions, source)
    fav = tuple(favourable)
    options = {"batch_size": batch_size, "workers": workers}
    blocks: list[MetricBlock] = []
    codes: list[pd.DataFrame] = []
    examples: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for attr in attributes:
        twins = make_twins(cases, attr, seed=seed, spec=population)
        info = twins.attrs["insyn_twins"]
        if info["note"]:
            notes.append(f"{attr}: {info['note']}.")
        pos = pd.Index(cases["case_id"].astype("str")).get_indexer(twins["twin_of"])
        run = decide(engine, twins, cols, labels, **options)
        pairs = twin_pairs(base, run, pos, fav)
        seen_tied = [f for f in info["tied_fields"]
                     if f in cols and (twins[f].to_numpy() != cases[f].to_numpy()[pos]).any()]
        direct = None
        if attr in cols and seen_tied:
            only_attribute = direct_twins(cases, twins, pos, info["tied_fields"])
            direct = twin_pairs(base, decide(engine, only_attribute, cols, labels, **options), pos, fav)
        summary = _summary(attr, info, twins, cases, pos, pairs, direct, cols, sensitive_features, run)
        summaries.append(summary)
        if summary["decided_pairs"] == 0 and len(twins):
            notes.append(f"{attr}: {summary['sentence']}")
        group_labels = [g for g in info["values"] if g in set(twins["twin_group"])]
        ref = (reference_groups or {}).get(attr)
        blocks += metric_blocks(attr, group_labels, twins["twin_group"].to_numpy(dtype=object), pos,
                                len(cases), pairs, statistics, ref)
        codes.append(code_changes(attr, twins["twin_group"].to_numpy(dtype=object), base, run, pos, pairs))
        examples += _examples(attr, twins, cases, pos, base, run, pairs, cols, spec.examples, seed,
                              start=len(examples) + 1)
    personas = None
    if spec.personas is not None:
        personas, persona_notes = decide_personas(spec.personas, base_dir, source, cases, engine, cols, labels,
                                                  **options)
        notes += persona_notes
    return CounterfactualResult(
        metrics=metric_table(blocks, statistics, correct=correct),
        examples=examples,
        personas=personas,
        codes=pd.concat(codes, ignore_index=True) if codes else empty_codes(),
        attributes=summaries,
        notes=list(dict.fromkeys(notes)),
    )


# --------------------------------------------------------------------------
# inputs


def _check_attributes(cases: pd.DataFrame, spec: CounterfactualSpec, source: str) -> list[str]:
    """The spec's attributes, or a SpecError naming one that is not a usable column."""
    attrs = list(spec.attributes)
    shown = ", ".join(map(str, cases.columns[:40])) + (" ..." if len(cases.columns) > 40 else "")
    for a in attrs:
        if a == "case_id":
            raise SpecError(f"{source}: counterfactual.attributes names 'case_id', which identifies a case. "
                            "Expected an attribute of the applicant or the application.")
        if a not in cases.columns:
            raise SpecError(f"{source}: counterfactual.attributes names {a!r}, which is not a column of the case "
                            f"frame. Columns: {shown}.")
    dup = [a for i, a in enumerate(attrs) if a in attrs[:i]]
    if dup:
        raise SpecError(f"{source}: counterfactual.attributes must name each attribute once. Got {dup[0]!r} twice.")
    for a in attrs:
        values = pd.unique(cases[a].dropna())
        if len(values) < 2:
            got = f"a single value ({text(values[0])!r})" if len(values) else "no value"
            raise SpecError(f"{source}: counterfactual.attributes names {a!r}, which has {got} in the case frame. "
                            "Expected at least two values: a twin changes the attribute to another value.")
    return attrs


def _with_base_decision(cases: pd.DataFrame, base: pd.DataFrame, source: str) -> tuple[pd.DataFrame, int]:
    """The cases that the engine was asked to decide, and how many others were left out."""
    need = ("case_id", "outcome", "amount", "reasons", "status")
    absent = [c for c in need if c not in base.columns]
    if absent:
        raise DataError(f"{source}: base_decisions has no column {absent[0]!r}. Expected {', '.join(need)}.")
    ids = base["case_id"].astype("str")
    if not ids.is_unique:
        raise DataError(f"{source}: base_decisions must hold one decision per case_id. Got repeated case ids.")
    known = cases["case_id"].astype("str").isin(ids).to_numpy()
    if not known.any():
        raise DataError(f"{source}: base_decisions holds a decision for none of the {len(cases)} cases. "
                        "Expected the engine's decisions on the cases.")
    if known.all():
        return cases, 0
    return cases.loc[known].reset_index(drop=True), int((~known).sum())


def _align_base(cases: pd.DataFrame, base: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """The base decisions as arrays in the row order of ``cases`` (each case has one)."""
    idx = pd.Index(base["case_id"].astype("str")).get_indexer(cases["case_id"].astype("str"))
    b = base.iloc[idx].reset_index(drop=True)
    return {"outcome": b["outcome"].astype("str").to_numpy(dtype=object),
            "amount": pd.to_numeric(b["amount"], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
            "reasons": b["reasons"].astype("str").fillna("").to_numpy(dtype=object),
            "ok": (b["status"].astype("str") == STATUS_OK).to_numpy()}


def _examples(attr: str, twins: pd.DataFrame, cases: pd.DataFrame, pos: np.ndarray, base: dict[str, np.ndarray],
              run: pd.DataFrame, pairs: dict[str, Any], cols: list[str], limit: int, seed: int,
              *, start: int) -> list[dict[str, Any]]:
    """Up to ``limit`` numbered pairs whose decision changed: changed fields and decisions, nothing else."""
    idx = np.flatnonzero(pairs["changed"])
    if idx.size == 0 or limit == 0:
        return []
    rng = np.random.default_rng([int(seed), zlib.crc32(attr.encode("utf-8")), 1])
    chosen = np.sort(rng.choice(idx, size=min(limit, idx.size), replace=False))
    fields = [attr, *[f for f in TIED_FIELDS.get(attr, ()) if f in twins.columns]]
    out = []
    for k, j in enumerate(chosen.tolist()):
        changed = {}
        for f in fields:
            before, after = cases[f].iat[int(pos[j])], twins[f].iat[j]
            if before != after:
                changed[f] = {"before": plain(before), "after": plain(after), "engine_sees": f in cols}
        out.append({
            "example": start + k,
            "attribute": attr,
            "changed": changed,
            "before": _decision_of(base["outcome"][pos[j]], base["amount"][pos[j]], base["reasons"][pos[j]]),
            "after": _decision_of(run["outcome"].iat[j], run["amount"].iat[j], run["reasons"].iat[j]),
        })
    return out


def _summary(attr: str, info: dict[str, Any], twins: pd.DataFrame, cases: pd.DataFrame, pos: np.ndarray,
             pairs: dict[str, Any], direct: dict[str, Any] | None, cols: list[str],
             sensitive: Sequence[str], run: pd.DataFrame) -> dict[str, Any]:
    """What happened to one attribute: twins, errors, flips (direct, through proxies) and a sentence."""
    tied_changed = {f: int((twins[f].to_numpy() != cases[f].to_numpy()[pos]).sum()) for f in info["tied_fields"]}
    seen = attr in cols
    seen_tied = [f for f, k in tied_changed.items() if k and f in cols]
    flips = int(pairs["flip"].sum())
    decided = int(pairs["decided"].sum())
    if direct is not None:
        both = pairs["flip"] & direct["decided"]
        n_direct = int((both & direct["flip"]).sum())
        n_proxy = int((both & ~direct["flip"]).sum())
    else:
        n_direct, n_proxy = (flips, 0) if seen else (0, flips if seen_tied else 0)
    errors = run.loc[run["status"].astype("str") != STATUS_OK, "error_reason"].astype("str")
    summary = {
        "attribute": attr, "sensitive": attr in set(sensitive), "kind": info["kind"], "rule": info["rule"],
        "values": info["values"], "engine_sees_attribute": seen, "tied_fields": info["tied_fields"],
        "tied_changed": tied_changed, "tied_fields_seen": seen_tied, "cases": int(len(distinct(pos))),
        "twins": int(len(twins)), "skipped": info["skipped"], "decided_pairs": decided,
        "twin_errors": int((~pairs["twin_ok"]).sum()), "original_not_decided": int((~pairs["base_ok"]).sum()),
        "error_reasons": list(dict.fromkeys(errors.tolist()))[:3], "flips": flips, "flips_direct": n_direct,
        "flips_through_proxies": n_proxy, "flips_unexplained": flips - n_direct - n_proxy,
    }
    summary["sentence"] = _sentence(summary)
    return summary


def _sentence(s: dict[str, Any]) -> str:
    """One plain-language sentence (or three) on an attribute's flips, for the report."""
    attr, flips, decided, twins = s["attribute"], s["flips"], s["decided_pairs"], s["twins"]
    first = s["error_reasons"][0] if s["error_reasons"] else ""
    if twins == 0:
        return f"No case could be given a {attr} twin ({'; '.join(s['skipped']) or 'no other value'})."
    if decided == 0:
        if s["twin_errors"] == twins:
            return (f"No flip rate for {attr}: the engine decided none of the {twins} twins (first reason: "
                    f"{first}). Counterfactual tests need an engine that can decide new cases.")
        return (f"No flip rate for {attr}: no twin pair was decided both times ({s['original_not_decided']} "
                f"originals and {s['twin_errors']} twins were not decided).")
    sees = "sees" if s["engine_sees_attribute"] else "does not see"
    out = f"The engine {sees} {attr}; changing it changed {flips} of {decided} decided twin decisions"
    proxies = ", ".join(s["tied_fields_seen"])
    if flips == 0:
        out += "."
    elif not s["engine_sees_attribute"] and proxies:
        out += f", all through fields tied to it that the engine sees ({proxies}): flips through proxies."
    elif not s["engine_sees_attribute"]:
        out += (", although the engine sees neither it nor a changed tied field: the engine is not "
                  "deterministic, or decides by the case id.")
    elif s["flips_through_proxies"] or s["flips_unexplained"]:
        out += (f": {s['flips_direct']} with {attr} alone (direct flips), {s['flips_through_proxies']} only "
                  f"with the tied fields ({proxies}; flips through proxies)"
                  + (f", {s['flips_unexplained']} undetermined" if s["flips_unexplained"] else "") + ".")
    else:
        out += ": direct flips."
    if s["twin_errors"]:
        out += f" {s['twin_errors']} of {twins} twins could not be decided (first reason: {first}) and are left out."
    if s["skipped"]:
        out += f" {sum(s['skipped'].values())} cases got no twin ({'; '.join(s['skipped'])})."
    return out


# --------------------------------------------------------------------------
# small helpers


def _decision_of(outcome: Any, amount: Any, reasons: Any) -> dict[str, Any]:
    """A decision as plain data for an example pair."""
    a = float(amount) if amount is not None and not pd.isna(amount) else None
    return {"outcome": str(outcome), "amount": a, "reasons": "" if pd.isna(reasons) else str(reasons)}


def _decision(d: Mapping[str, Any]) -> str:
    """A decision as text: ``grant 9,520 SEK (CODES)``."""
    amount = f" {d['amount']:,.0f} SEK" if d["amount"] is not None else ""
    return f"{d['outcome']}{amount}" + (f" ({d['reasons']})" if d["reasons"] else "")


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _cell(row: pd.Series, *, percent: bool) -> str:
    """A metric value with its interval as text; ``suppressed`` or ``undefined`` when there is none."""
    if row["suppressed"]:
        return "suppressed"
    if not np.isfinite(row["value"]):
        return "undefined"
    fmt = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:,.0f}")
    ci = f" [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]" if np.isfinite(row["ci_low"]) else ""
    return fmt(row["value"]) + ci
