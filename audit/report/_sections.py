"""The run-level sections of a report: data quality, journey, method, scorecard, reproducibility.

Besides the disparities, a report must let an analyst check how the numbers
came about. These sections describe the run rather than one metric:

* *data quality*: the population's status counts (decided, engine error,
  held back), any bias injected into a synthetic population, and every
  expectation that was not met, with at most three example case ids;
* *data journey*: each step, who acts in it and its row accounting
  (rows in = rows out + rejected + errored), drawn as a flow chart; where
  each field comes from and whether the engine sees fields that rest on a
  caseworker's judgement; the OpenLineage summary;
* *method*: alpha, the multiple-testing correction, intervals and tests,
  suppression, every metric's definition, sample sizes and minimum
  detectable differences;
* *public-values scorecard*: efficiency (automation rate, time), service
  (refusal and routing disparities), professionalism (agreement with the
  law's baseline) and transparency (share of decisions with reason codes),
  after Ranerup and Svensson's public values of automated social services;
* *reproducibility*: run id, seed, hashes of the spec and engine
  definitions, software versions and the spec as run, with secrets removed.

Each function takes the :class:`~audit.report._builder.Builder` of the
rendering and returns the plain data its template lays out.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections import defaultdict
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audit.result import CASES_COLUMN
from audit.report._builder import (
    SECTION_IDS,
    Builder,
    as_float,
    attributes_of,
    meta_field,
    section_of,
    slug,
    verbatim,
)
from audit.report._charts import PALETTE, FlowStep, flow_chart
from audit.report._format import DASH, is_missing
from audit.report._values import with_values

__all__ = ["journey", "method", "quality", "reproducibility", "scorecard"]

_ACTOR_COLOURS = {
    "system": PALETTE["blue"],
    "engine": PALETTE["sky_blue"],
    "caseworker": PALETTE["reddish_purple"],
    "applicant": PALETTE["orange"],
    "registry": PALETTE["bluish_green"],
}
_SECRET_KEYS = frozenset({"api_key", "headers", "password", "token"})
_LIBRARIES = (
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "fairlearn",
    "great-expectations",
    "openlineage-python",
    "duckdb",
    "pyarrow",
    "pydantic",
    "jinja2",
)
_MAX_EXAMPLE_IDS = 3


def _redact(obj: Any) -> Any:
    """Replace secrets in a spec (API keys, HTTP headers) by ``***``."""
    if isinstance(obj, Mapping):
        return {k: ("***" if k in _SECRET_KEYS and v else _redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def quality(b: Builder) -> dict[str, Any]:
    population = b.d.get("population") or {}
    counts = population.get("status_counts") or {}
    total = sum(int(v or 0) for v in counts.values())
    status_rows = [
        {
            "status": b.m(f"quality.status_{k}"),
            "count": b.f.integer(counts.get(k)),
            "share": b.f.percent(int(counts.get(k) or 0) / total) if total else DASH,
        }
        for k in ("ok", "error", "quarantined")
        if k in counts
    ]
    bias = population.get("bias") or {}
    bias_rows = (
        [
            {"key": str(k), "value": json.dumps(v, ensure_ascii=False, sort_keys=True) if not isinstance(v, str) else v}
            for k, v in sorted(bias.items())
        ]
        if isinstance(bias, Mapping)
        else []
    )
    steps = []
    for c in b.d.get("checks") or []:
        if not isinstance(c, Mapping):
            continue
        results = [r for r in (c.get("results") or []) if isinstance(r, Mapping)]
        failed = [r for r in results if not r.get("success")]
        passed = [r for r in results if r.get("success")]
        status = "FAIL" if not c.get("success", not failed) else ("WARN" if failed else "PASS")
        steps.append(
            {
                "step": b.step_label(c.get("step")),
                "status": status,
                "status_label": b.status_label(status),
                "policy": b.m.get(f"quality.policy_{c.get('policy')}") or str(c.get("policy") or DASH),
                "success": bool(c.get("success", not failed)),
                "summary": b.m(
                    "quality.step_summary",
                    total=b.f.integer(len(results)),
                    failed=b.f.integer(len(failed)),
                    cases=b.f.integer(c.get("n_failed_cases")) if c.get("n_failed_cases") is not None else DASH,
                ),
                "failed": [_check_row(b, r) for r in failed],
                "passed": [_check_row(b, r) for r in passed],
            }
        )
    return {
        "id": "quality",
        "title": b.m("quality.title"),
        "available": True,
        "reason": None,
        "source": {
            "kind": b.m.get(f"population.kind_{population.get('kind')}") or str(population.get("kind") or DASH),
            "path": str(population.get("path") or DASH),
            "n": b.f.integer(population.get("n_cases")),
        },
        "status_rows": status_rows,
        "bias": bias_rows,
        "notes": [str(n) for n in (population.get("notes") or [])],
        "steps": steps,
    }


def _check_row(b: Builder, r: Mapping[str, Any]) -> dict[str, Any]:
    ids = list(r.get("sample_case_ids") or [])[:_MAX_EXAMPLE_IDS]
    observed = r.get("observed_value")
    if isinstance(observed, float):
        observed_text = b.f.significant(observed)
    elif observed is None:
        observed_text = DASH
    else:
        observed_text = json.dumps(observed, ensure_ascii=False)[:80]
    pct = r.get("unexpected_percent")
    return {
        "expectation": str(r.get("expectation") or DASH),
        "suite": str(r.get("suite") or ""),
        "column": str(r.get("column") or DASH),
        "unexpected": b.f.integer(r.get("unexpected_count")),
        "percent": b.f.percent(float(pct) / 100) if not is_missing(pct) else DASH,
        "observed": observed_text,
        "examples": ", ".join(str(i) for i in ids) if ids else DASH,
        "message": str(r.get("message") or ""),
    }


def journey(b: Builder) -> dict[str, Any]:
    journey = b.d.get("journey") or {}
    steps = [s for s in (journey.get("steps") or []) if isinstance(s, Mapping)]
    if not steps:
        return {
            "id": "journey",
            "title": b.m("journey.title"),
            "available": False,
            "reason": b.m("journey.absent"),
            "chart": None,
            "steps": [],
            "fields": [],
            "origins": [],
            "lineage": "",
        }
    rows, flow = [], []
    for s in steps:
        rin, rout = s.get("rows_in"), s.get("rows_out")
        rej, err = int(s.get("rows_rejected") or 0), int(s.get("rows_errored") or 0)
        accounted = not is_missing(rin) and not is_missing(rout) and int(rin) == int(rout) + rej + err
        actor = str(s.get("actor") or "")
        actor_text = b.actor_label(actor)
        for role in ("engine", "caseworker"):
            who = s.get(role)
            if who:
                actor = role
                name = who.get("name") if isinstance(who, Mapping) else who
                version = who.get("version") if isinstance(who, Mapping) else None
                detail = " ".join(str(x) for x in (name, version) if x)
                actor_text = f"{b.actor_label(role)} ({detail})" if detail else b.actor_label(role)
                break
        rows.append(
            {
                "name": b.step_label(s.get("name")),
                "actor": actor_text,
                "rows_in": b.f.integer(rin),
                "rows_out": b.f.integer(rout),
                "rejected": b.f.integer(rej),
                "errored": b.f.integer(err),
                "duration": b.f.seconds(s.get("duration_s")),
                "accounted": b.m("common.yes") if accounted else b.m("common.no"),
                "changes": b.m(
                    "journey.changes",
                    added=b.f.integer(len(s.get("columns_added") or [])),
                    changed=b.f.integer(len(s.get("columns_changed") or [])),
                    dropped=b.f.integer(len(s.get("columns_dropped") or [])),
                ),
            }
        )
        alert = ""
        if rej or err:
            alert = b.m("journey.alert", rejected=b.f.integer(rej), errored=b.f.integer(err))
        flow.append(
            FlowStep(
                label=rows[-1]["name"],
                actor=rows[-1]["actor"],
                colour=_ACTOR_COLOURS.get(actor, PALETTE["black"]),
                main=b.m("journey.flow_main", rows_in=rows[-1]["rows_in"], rows_out=rows[-1]["rows_out"]),
                alert=alert,
                extra=rows[-1]["duration"],
            )
        )
    total_rej = sum(int(s.get("rows_rejected") or 0) for s in steps)
    total_err = sum(int(s.get("rows_errored") or 0) for s in steps)
    chart = flow_chart(
        chart_id=b.chart_id(),
        title=b.m("journey.chart_title"),
        description=b.m(
            "journey.chart_desc",
            steps=b.f.integer(len(steps)),
            names=", ".join(r["name"] for r in rows),
            rejected=b.f.integer(total_rej),
            errored=b.f.integer(total_err),
        ),
        steps=flow,
    )
    fields = []
    origins: dict[str, int] = defaultdict(int)
    for fld in journey.get("fields") or []:
        if not isinstance(fld, Mapping):
            continue
        origin = str(fld.get("origin") or "")
        origins[origin] += 1
        changed = fld.get("changed_by") or []
        fields.append(
            {
                "column": str(fld.get("column") or DASH),
                "origin": b.actor_label(origin) if origin else DASH,
                "discretion": b.m("common.yes") if fld.get("discretion") else b.m("common.no"),
                "engine": b.m("common.yes") if fld.get("used_by_engine") else b.m("common.no"),
                "changed_by": ", ".join(b.actor_label(c) for c in changed)
                if isinstance(changed, list) and changed
                else (str(changed) if changed else DASH),
            }
        )
    discretionary = [
        f["column"] for f in fields if f["discretion"] == b.m("common.yes") and f["engine"] == b.m("common.yes")
    ]
    origin_rows = [
        {"origin": b.actor_label(o) if o else DASH, "count": b.f.integer(c)}
        for o, c in sorted(origins.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    lineage = b.spec.get("lineage") or {}
    execution = b.d.get("execution") or {}
    if execution:  # a chunked run (audit.chunked): events per chunk, the journey and decisions in parts
        lineage_text = b.m(
            "journey.lineage_chunked", chunks=b.f.integer(execution.get("chunks")),
            steps=b.f.integer(sum(1 for s in steps if s.get("chunk_run_uuids"))),
            namespace=str(lineage.get("namespace") or "insyn"),
        )
    else:
        lineage_text = b.m(
            "journey.lineage", steps=b.f.integer(len(steps)), namespace=str(lineage.get("namespace") or "insyn")
        )
    if lineage.get("url"):
        lineage_text += " " + b.m("journey.lineage_url", url=str(lineage.get("url")))
    return {
        "id": "journey",
        "title": b.m("journey.title"),
        "available": True,
        "reason": None,
        "chart": chart,
        "steps": rows,
        "fields": fields,
        "origins": origin_rows,
        "discretionary": b.m("journey.discretionary", columns=", ".join(discretionary)) if discretionary else "",
        "lineage": lineage_text,
    }


def method(b: Builder) -> dict[str, Any]:
    stats = b.spec.get("statistics") or {}
    correction = str(stats.get("correction", "holm"))
    boot = stats.get("bootstrap", 2000)
    statements = [
        b.m("method.alpha", alpha=b.f.number(b.alpha, digits=2), level=b.level),
        b.m.get(f"method.correction_{correction}") or b.m("method.correction_other", name=correction),
        b.m("method.intervals"),
        b.m("method.bootstrap", draws=b.f.integer(boot)) if boot else b.m("method.analytic"),
        b.m("method.suppression", min=b.f.integer(b.min_group_size)),
    ]
    if "equal_burden" in b.by_metric or "burden_gap" in b.by_metric:
        statements.append(b.m("method.sources_selection"))
    metrics = []
    for name in sorted(
        b.by_metric, key=lambda n: (SECTION_IDS.index(section_of(n)) if section_of(n) in SECTION_IDS else 99, n)
    ):
        tests = sorted({str(r.get("test")) for r in b.by_metric[name] if r.get("test")})
        meta = b.registry.get(name)
        numerator, denominator = meta_field(meta, "numerator"), meta_field(meta, "denominator")
        metrics.append(
            {
                "name": name,
                "label": b.metric_label(name),
                "description": b.metric_description(name) or b.m("method.no_description"),
                "definition": b.m("method.definition", numerator=numerator, denominator=denominator)
                if numerator and denominator
                else "",
                "kind": b.m(f"kind.{b.kind(name)}"),
                "tests": ", ".join(b.m.get(f"test.{slug(t)}") or t for t in tests) if tests else DASH,
            }
        )
    # sample sizes: the n metric when present, else the largest n any metric reports for the group
    sizes: dict[tuple[str, ...], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    source = b.by_metric.get("n") or b.metric_rows
    for r in source:
        a = attributes_of(r)
        if not a:
            continue
        g = str(r.get("group"))
        old = sizes[a].get(g)
        if old is None or (as_float(r.get("n")) or 0) > (as_float(old.get("n")) or 0):
            sizes[a][g] = r
    order = {a: i for i, a in enumerate(b.sensitive)}
    sample = []
    for a in sorted(sizes, key=lambda a: (len(a), order.get(a[0], 99) if len(a) == 1 else 0, a)):
        sample.append(
            {
                "title": b.attribute_label(a),
                "rows": [
                    {
                        "label": b.group_label(a, g),
                        "n": b.n_text(r),
                        "suppressed": b.m("common.yes") if r.get("suppressed") else b.m("common.no"),
                    }
                    for g, r in sizes[a].items()
                ],
            }
        )
    mdd_metrics = [
        n
        for n in b.by_metric
        if (b.headline(n) or n in b.thresholded) and any(not is_missing(r.get("mdd")) for r in b.by_metric[n])
    ]
    mdd = []
    for n in mdd_metrics:
        kind = b.kind(n)
        rows = []
        for a, rs in b.panels(n):
            for r in rs:
                if b.row_status(r) == "reference" or r.get("suppressed"):
                    continue
                rows.append(
                    {
                        "attribute": b.attribute_label(a),
                        "label": b.group_label(a, r.get("group")),
                        "n": b.n_text(r),
                        "mdd": b.row_view(r, kind)["mdd"],
                    }
                )
        if rows:
            mdd.append({"label": b.metric_label(n), "rows": rows})
    return {
        "id": "method",
        "title": b.m("method.title"),
        "available": True,
        "reason": None,
        "statements": statements,
        "metrics": metrics,
        "sample": sample,
        "mdd": mdd,
    }


def _worst_finding(b: Builder, name: str) -> str:
    order = {"ERROR": 0, "FAIL": 1, "WARN": 2, "PASS": 3}
    statuses = [str(f.get("status")).upper() for f in b.findings if f.get("metric") == name]
    if not statuses:
        return b.m("scorecard.no_threshold")
    return b.status_label(min(statuses, key=lambda s: order.get(s, 4)))


def _disparity_indicator(b: Builder, name: str) -> tuple[str, str]:
    if name not in b.by_metric:
        return DASH, b.m("scorecard.not_measured", metric=b.metric_label(name))
    spread = b.spread(name)
    return spread, _worst_finding(b, name)


def _transparency(b: Builder) -> tuple[str, str]:
    """The share of decided applications whose decision gives reason codes, counted in the decisions."""
    decisions = b.result.decisions
    if decisions is None or "reasons" not in decisions.columns:
        return DASH, b.m("scorecard.no_reasons")
    reasons = decisions["reasons"]  # only the two columns are read: no filtered copy of the whole frame
    # a chunked run's decisions: a row per combination of values, the cases it stands for counted
    cases = decisions[CASES_COLUMN].to_numpy(dtype=np.int64) if CASES_COLUMN in decisions.columns else None
    if "status" in decisions.columns:
        ok = (decisions["status"] == "ok").to_numpy()  # str or categorical alike, no conversion
        reasons = reasons[ok]
        cases = None if cases is None else cases[ok]
    if len(reasons) == 0:
        return DASH, b.m("scorecard.no_decisions")
    if isinstance(reasons.dtype, pd.CategoricalDtype):  # judge each distinct text once
        given = np.append(reasons.cat.categories.astype("str").str.strip().str.len().to_numpy() > 0, False)
        has = given[reasons.cat.codes.to_numpy()]  # code -1 (missing): no reasons
    else:
        has = (reasons.astype("str").fillna("").str.strip().str.len() > 0).to_numpy()
    if cases is None:
        cases = np.ones(len(has), dtype=np.int64)
    total = int(cases.sum())
    given_n = int(cases[has].sum())
    if total == 0:
        return DASH, b.m("scorecard.no_decisions")
    return b.f.percent(given_n / total), b.m(
        "scorecard.reasons_counted", n=b.f.integer(given_n), total=b.f.integer(total)
    )


def scorecard(b: Builder) -> dict[str, Any]:
    engine = b.d.get("engine") or {}
    rows = []
    auto = b.overall("automation_rate")
    rows.append(
        {
            "dimension": b.m("scorecard.efficiency"),
            "indicator": b.metric_label("automation_rate"),
            "value": (
                b.f.percent(auto.get("value"))
                + " ("
                + b.f.interval(auto.get("ci_low"), auto.get("ci_high"), "rate")
                + ")"
            )
            if auto
            else DASH,
            "status": _worst_finding(b, "automation_rate")
            if auto
            else b.m("scorecard.not_measured", metric=b.metric_label("automation_rate")),
        }
    )
    rows.append(
        {
            "dimension": b.m("scorecard.efficiency"),
            "indicator": b.m("scorecard.time"),
            "value": b.m(
                "scorecard.time_value",
                seconds=b.f.seconds(engine.get("duration_s")),
                rate=b.f.integer(engine.get("cases_per_s")),
            )
            if engine.get("duration_s") is not None
            else DASH,
            "status": "" if engine else b.m("common.no_engine"),
        }
    )
    for name, key in (("deny_rate", "scorecard.refusal"), ("refer_rate", "scorecard.routing")):
        value, status = _disparity_indicator(b, name)
        rows.append({"dimension": b.m("scorecard.service"), "indicator": b.m(key), "value": value, "status": status})
    prof_value, prof_status = DASH, b.m("scorecard.no_truth")
    accuracy = b.overall("accuracy")
    if accuracy is not None and b.truth_kind != "none":
        prof_value = (
            b.f.percent(accuracy.get("value"))
            + " ("
            + b.f.interval(accuracy.get("ci_low"), accuracy.get("ci_high"), "rate")
            + ")"
        )
        prof_status = b.m("scorecard.from_metric", metric=b.metric_label("accuracy"))
    rows.append(
        {
            "dimension": b.m("scorecard.professionalism"),
            "indicator": b.m("scorecard.agreement"),
            "value": prof_value,
            "status": prof_status,
        }
    )
    value, status = _transparency(b)
    rows.append(
        {
            "dimension": b.m("scorecard.transparency"),
            "indicator": b.m("scorecard.reasons"),
            "value": value,
            "status": status,
        }
    )
    rows = with_values(b, rows)  # public values measured from the decision log (issue 21)
    return {"id": "scorecard", "title": b.m("scorecard.title"), "available": True, "reason": None, "rows": rows}


def reproducibility(b: Builder) -> dict[str, Any]:
    spec = _redact(b.spec)
    canonical = json.dumps(b.spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    engine = b.d.get("engine") or {}
    truth_engine = (engine.get("truth") or {}).get("engine") or {}
    population = b.d.get("population") or {}
    items = [
        (b.m("repro.run_id"), verbatim(b.d.get("run_id") or DASH)),
        (b.m("repro.generated_at"), str(b.d.get("generated_at") or DASH)),
        (b.m("repro.seed"), str(b.spec.get("seed", DASH))),
        (b.m("repro.spec_hash"), verbatim(hashlib.sha256(canonical.encode("utf-8")).hexdigest())),
        (b.m("repro.insyn_version"), str(b.d.get("insyn_version") or DASH)),
        (b.m("repro.schema_version"), str(b.d.get("schema_version") or DASH)),
    ]
    if engine:
        items.append((b.m("repro.engine"), f"{b.engine_name()} {engine.get('version') or ''}".strip()))
        if engine.get("definition_hash"):
            items.append((b.m("repro.engine_hash"), verbatim(engine["definition_hash"])))
    if truth_engine:
        items.append(
            (
                b.m("repro.truth_engine"),
                f"{truth_engine.get('name') or DASH} {truth_engine.get('version') or ''}".strip(),
            )
        )
        if truth_engine.get("definition_hash"):
            items.append((b.m("repro.truth_hash"), verbatim(truth_engine["definition_hash"])))
    if population.get("path"):
        items.append((b.m("repro.population"), str(population["path"])))
    if population.get("sha256"):
        items.append((b.m("repro.population_hash"), verbatim(population["sha256"])))
    versions, hashes, versions_source = _versions(b)
    return {
        "id": "reproducibility",
        "title": b.m("reproducibility.title"),
        "available": True,
        "reason": None,
        "facts": [{"label": k, "value": v} for k, v in items],
        "versions": [{"name": k, "version": v} for k, v in versions.items()],
        "versions_source": versions_source,
        "hashes": [{"name": k, "sha256": verbatim(v)} for k, v in hashes.items()],
        "spec_yaml": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False),
        "rerun": b.m("reproducibility.rerun", seed=str(b.spec.get("seed", DASH))),
    }


def _versions(b: Builder) -> tuple[dict[str, str], dict[str, str], str]:
    run_dir = b.result.run_dir
    if run_dir is not None:
        manifest = run_dir / "manifest.json"
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, Mapping):
                versions = {str(k): str(v) for k, v in (data.get("versions") or {}).items()}
                hashes = {
                    str(k): str(v) for k, v in {**(data.get("inputs") or {}), **(data.get("artifacts") or {})}.items()
                }
                return versions, hashes, b.m("reproducibility.from_manifest")
    versions = {"insyn": str(b.d.get("insyn_version") or DASH), "python": platform.python_version()}
    for dist in _LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = b.m("common.not_installed")
    return versions, {}, b.m("reproducibility.from_renderer")
