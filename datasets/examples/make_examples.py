"""Generate the small synthetic example data of ``datasets/examples/``.

Every file here is made up by this script from a fixed seed; none of it
describes real people. The four files show the historical population
sources of Insyn, each in the form an authority typically hands it over:

``decision-log.xlsx``
    an Excel export of a municipal robot's decisions on monthly applications
    for social assistance, with Swedish column names and labels, a first
    sheet of notes and the data on the sheet ``Beslut 2025``;
``confusion.csv``
    per-group confusion percentages of a risk model, in the layout of the
    Swedish Social Insurance Agency's published control-model tables
    (``Dataset``, ``Model``, ``Feature_EN``, ``Feature_Value_EN``, ``TP``,
    ``FP``, ``FN``, ``TN``, ``group_size``), with small cells blanked out;
``selection-audit.csv``
    the cases a risk model picked for investigation next to a random control
    sample, as a Swedish spreadsheet export (``;``-separated, decimal commas,
    Windows-1252 encoding);
``compare.parquet``
    caseworkers' recorded decisions next to a robot's decisions on the same
    applications.

Run ``python datasets/examples/make_examples.py`` to write them again; the
same seed gives the same cell values.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SEED", "main", "make_compare", "make_confusion", "make_decision_log", "make_selection"]

SEED = 20250101
"""Seed of every generator in this script."""

_REGIONS_SV = np.array(["Sverige", "Norden", "EU", "Utanför EU"], dtype=object)
_REGIONS_EN = np.array(["sweden", "nordic", "eu", "outside_eu"], dtype=object)
_REGION_P = np.array([0.55, 0.08, 0.12, 0.25])
_AGE_EDGES = [18, 29, 49, 64, 120]
_AGE_LABELS = ["18-29", "30-49", "50-64", "65+"]


def _age_band(age: np.ndarray) -> np.ndarray:
    return pd.cut(age, bins=_AGE_EDGES, labels=_AGE_LABELS, include_lowest=True).astype("str").to_numpy()


def _round_to(x: np.ndarray, step: int) -> np.ndarray:
    return (np.round(x / step) * step).astype(float)


# ---------------------------------------------------------------------------
# 1. a decision log from Excel


def make_decision_log(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """A robot's decisions with caseworker review and a later file review (Swedish labels).

    The robot refers new applications and applicants who need an interpreter
    to a caseworker more often, and wrongly refuses entitled applicants born
    outside the EU more often than others (a built-in bias to find).
    """
    region = rng.choice(4, size=n, p=_REGION_P)
    female = rng.random(n) < 0.52
    age = rng.integers(19, 76, size=n)
    interpreter = rng.random(n) < np.array([0.02, 0.05, 0.15, 0.40])[region]
    new = rng.random(n) < 0.2
    month = rng.integers(1, 7, size=n)
    # the correct decision found by a later file review
    correct = rng.choice(3, size=n, p=[0.55, 0.25, 0.20])  # 0 grant, 1 partial, 2 deny
    correct_amount = np.where(correct == 0, _round_to(rng.uniform(4000, 14000, n), 10),
                              np.where(correct == 1, _round_to(rng.uniform(1500, 6000, n), 10), 0.0))
    # the robot
    refer = rng.random(n) < 0.10 + 0.25 * new + 0.20 * interpreter
    wrong_deny = (correct < 2) & (rng.random(n) < np.where(region == 3, 0.18, 0.05))
    downgrade = (correct == 0) & ~wrong_deny & (rng.random(n) < 0.06)
    wrong_grant = (correct == 2) & (rng.random(n) < 0.04)
    robot = np.where(wrong_deny, 2, np.where(downgrade, 1, np.where(wrong_grant, 0, correct)))
    robot_amount = np.where(downgrade, _round_to(correct_amount * rng.uniform(0.6, 0.9, n), 10),
                            np.where(wrong_grant, _round_to(rng.uniform(3000, 9000, n), 10),
                                     np.where(robot == 2, 0.0, correct_amount)))
    # the caseworker decides referred cases, mostly correctly
    cw_wrong = rng.random(n) < 0.08
    caseworker = np.where(cw_wrong, rng.choice(3, size=n), correct)
    cw_amount = np.where(caseworker == 2, 0.0,
                         np.where(caseworker == correct, correct_amount, _round_to(rng.uniform(2000, 9000, n), 10)))
    labels = np.array(["Bifall", "Delavslag", "Avslag"], dtype=object)
    beslut = np.where(refer, "Manuell handläggning", labels[robot])
    # the robot leaves the amount blank (sometimes a lone space) for referred cases
    belopp = np.where(refer, np.where(rng.random(n) < 0.5, "", " "), robot_amount.astype(int).astype(str))
    return pd.DataFrame(
        {
            "Ärendenummer": [f"BES-{i:05d}" for i in range(1, n + 1)],
            "Beslutsmånad": [f"2025-{m:02d}" for m in month],
            "Ansökningstyp": np.where(new, "Nyansökan", "Återansökan"),
            "Kön": np.where(female, "Kvinna", "Man"),
            "Födelseregion": _REGIONS_SV[region],
            "Ålder": age,
            "Tolk": np.where(interpreter, "Ja", "Nej"),
            "Beslut": beslut,
            "Belopp": belopp,
            "Handläggarbeslut": np.where(refer, labels[caseworker], ""),
            "Handläggarbelopp": np.where(refer, cw_amount.astype(int).astype(str), ""),
            "Granskat beslut": labels[correct],
            "Granskat belopp": correct_amount.astype(int),
        }
    )


def write_decision_log(frame: pd.DataFrame, path: Path) -> None:
    """Write the log as Excel: a notes sheet first, the data on ``Beslut 2025``.

    Numbers stay numbers; the amount columns are written as numbers where
    present and as text (empty or a lone space) where the robot left them
    blank, as real exports do.
    """
    notes = pd.DataFrame(
        {
            "Läs mig": [
                "Syntetiska exempeldata från Insyn (datasets/examples/make_examples.py).",
                "Inga verkliga personer. Licens: CC0 1.0.",
                "Data finns på bladet 'Beslut 2025'.",
            ]
        }
    )
    out = frame.copy()
    for col in ("Belopp", "Handläggarbelopp"):
        out[col] = [int(v) if v.strip() else v for v in out[col]]
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        notes.to_excel(xw, sheet_name="Läs mig", index=False)
        out.to_excel(xw, sheet_name="Beslut 2025", index=False)
        props = xw.book.properties
        props.creator = "Insyn make_examples.py"
        props.created = props.modified = datetime(2025, 1, 1)


# ---------------------------------------------------------------------------
# 2. an aggregated confusion table with suppressed cells


def _percentages(cells: np.ndarray) -> np.ndarray:
    """Cells as percentages with one decimal that add up to exactly 100.0 (largest remainder)."""
    tenths = cells / cells.sum() * 1000
    base = np.floor(tenths)
    short = int(1000 - base.sum())
    order = np.argsort(-(tenths - base), kind="stable")
    base[order[:short]] += 1
    return base / 10


def make_confusion(rng: np.random.Generator) -> pd.DataFrame:
    """Per-group confusion percentages of a control model, in the layout of published tables.

    A cell with fewer than 5 cases is blanked out (suppressed); the other
    cells of that row keep their percentages, so a row with a blank does not
    add up to 100.
    """
    features = {
        "Gender": (["Women", "Men"], [0.52, 0.48]),
        "Country of birth": (["Sweden", "Nordic countries", "EU", "Outside EU"], list(_REGION_P)),
        "Age": (_AGE_LABELS, [0.30, 0.40, 0.25, 0.05]),
    }
    # per-group base rate and how much more often the model flags the group
    lift = {"Outside EU": 2.0, "EU": 1.3, "Men": 1.2, "18-29": 1.4}
    rows = []
    for dataset, total in (("Prepilot", 2400), ("Pilot", 1200)):
        for model, strength in (("BR", 1.0), ("ML", 1.5)):
            for feature, (values, shares) in features.items():
                sizes = rng.multinomial(total, shares)
                for value, size in zip(values, sizes):
                    base = 0.12
                    flag = min(0.9, 0.15 * lift.get(value, 1.0))
                    pos = rng.binomial(size, base)
                    neg = size - pos
                    tp = rng.binomial(pos, min(0.95, 0.45 * strength))
                    fp = rng.binomial(neg, flag)
                    fn, tn = pos - tp, neg - fp
                    cells = np.array([tp, fp, fn, tn], dtype=float)
                    pct = _percentages(cells)
                    pct = np.where(cells < 5, np.nan, pct)
                    rows.append([dataset, model, feature, value, *pct, int(size)])
    return pd.DataFrame(rows, columns=["Dataset", "Model", "Feature_EN", "Feature_Value_EN", "TP", "FP", "FN", "TN",
                                       "group_size"])


# ---------------------------------------------------------------------------
# 3. a selection audit


def make_selection(rng: np.random.Generator, *, population_size: int = 40000, selected: int = 900,
                   random: int = 600) -> pd.DataFrame:
    """Cases a risk model picked, plus a random control sample, from one population.

    Errors are about equally common in every group (10-12 %), but the risk
    score leans on region of birth, so applicants born outside the EU are
    picked more often than their errors warrant. The random sample is drawn
    from the whole population; a case in both is recorded as random. About
    3 % of investigations are not finished (blank result).
    """
    n = population_size
    region = rng.choice(4, size=n, p=_REGION_P)
    female = rng.random(n) < 0.5
    age = rng.integers(19, 76, size=n)
    error = rng.random(n) < np.where(female, 0.10, 0.12)
    logit = -3.0 + 1.6 * error + np.array([0.0, 0.1, 0.4, 1.0])[region] + 0.3 * (age < 30) + rng.normal(0, 0.8, n)
    score = 1 / (1 + np.exp(-logit))
    picked = np.zeros(n, dtype=bool)
    picked[np.argsort(-score, kind="stable")[:selected]] = True
    in_random = np.zeros(n, dtype=bool)
    in_random[rng.choice(n, size=random, replace=False)] = True
    keep = picked | in_random
    idx = np.flatnonzero(keep)
    idx = idx[rng.permutation(idx.size)]
    how = np.where(in_random[idx], "Slumpmässigt", "Modell")
    result = np.where(error[idx], "Fel", "Inget fel").astype(object)
    result[rng.random(idx.size) < 0.03] = ""
    return pd.DataFrame(
        {
            "Ärende": [f"KTR-{i:05d}" for i in range(1, idx.size + 1)],
            "Kön": np.where(female[idx], "Kvinna", "Man"),
            "Födelseregion": _REGIONS_SV[region[idx]],
            "Åldersgrupp": _age_band(age[idx]),
            "Urval": how,
            "Riskpoäng": np.round(score[idx], 3),
            "Kontrollresultat": result,
        }
    )


def write_swedish_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write as a Swedish spreadsheet export: ``;`` separator, decimal comma, Windows-1252."""
    text = frame.to_csv(sep=";", decimal=",", index=False, lineterminator="\r\n")
    path.write_bytes(text.encode("cp1252"))


# ---------------------------------------------------------------------------
# 4. an engine comparison


def make_compare(rng: np.random.Generator, n: int = 1500) -> pd.DataFrame:
    """Caseworkers' recorded decisions and a robot's decisions on the same applications.

    The robot mostly agrees, but refuses or refers applicants who need an
    interpreter (mostly born outside the EU) more often than others, and
    grants a few that caseworkers refused.
    """
    region = rng.choice(4, size=n, p=_REGION_P)
    female = rng.random(n) < 0.52
    age = rng.integers(19, 76, size=n)
    interpreter = rng.random(n) < np.array([0.02, 0.05, 0.15, 0.40])[region]
    labels = np.array(["grant", "partial", "deny"], dtype=object)
    cw = rng.choice(3, size=n, p=[0.55, 0.20, 0.25])
    cw_amount = np.where(cw == 0, _round_to(rng.uniform(4000, 14000, n), 10),
                         np.where(cw == 1, _round_to(rng.uniform(1500, 6000, n), 10), 0.0))
    u = rng.random(n)
    to_deny = (cw < 2) & (u < 0.05 + 0.12 * interpreter)
    to_refer = (cw < 2) & ~to_deny & (rng.random(n) < 0.03 + 0.08 * interpreter)
    to_partial = (cw == 0) & ~to_deny & ~to_refer & (rng.random(n) < 0.06)
    to_grant = (cw == 2) & (rng.random(n) < 0.05)
    robot = np.where(to_deny, "deny", np.where(to_refer, "refer", np.where(to_partial, "partial",
                     np.where(to_grant, "grant", labels[cw]))))
    robot_amount = np.where(to_deny, 0.0, np.where(to_refer, np.nan, np.where(
        to_partial, _round_to(cw_amount * rng.uniform(0.6, 0.9, n), 10),
        np.where(to_grant, _round_to(rng.uniform(2000, 8000, n), 10), cw_amount))))
    return pd.DataFrame(
        {
            "case_id": pd.Series([f"CMP-{i:05d}" for i in range(1, n + 1)], dtype="str"),
            "sex": pd.Series(np.where(female, "female", "male"), dtype="str"),
            "birth_region": pd.Series(_REGIONS_EN[region], dtype="str"),
            "age_band": pd.Series(_age_band(age), dtype="str"),
            "interpreter": interpreter,
            "caseworker_outcome": pd.Series(labels[cw], dtype="str"),
            "caseworker_amount": cw_amount,
            "robot_outcome": pd.Series(robot, dtype="str"),
            "robot_amount": robot_amount,
        }
    )


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Write the four example files into ``--out`` (default: this script's folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(SEED).spawn(4)
    write_decision_log(make_decision_log(np.random.default_rng(seeds[0])), out / "decision-log.xlsx")
    make_confusion(np.random.default_rng(seeds[1])).to_csv(out / "confusion.csv", index=False, float_format="%.1f")
    write_swedish_csv(make_selection(np.random.default_rng(seeds[2])), out / "selection-audit.csv")
    make_compare(np.random.default_rng(seeds[3])).to_parquet(out / "compare.parquet", index=False)
    for name in ("decision-log.xlsx", "confusion.csv", "selection-audit.csv", "compare.parquet"):
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
