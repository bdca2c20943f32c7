"""Check results merged across chunks equal one validation of the whole frame, for every shipped type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.checks import collecting_statistics, load_suite, merge_chunk_checks, validate
from audit.checks._merge import linear_quantiles

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("success", "element_count", "unexpected_count", "missing_count", "unexpected_percent", "observed_value",
            "details", "message")


def _frame(n: int, seed: int) -> pd.DataFrame:
    """A decision-log-like frame with duplicates across chunks, missing values, bad rows and a numeric proxy."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:05d}" for i in range(n)], dtype=object)
    ids[n - 3] = ids[2]  # a duplicate in the last chunk of one in the first
    ids[n // 2] = ids[n // 2 + 1]  # a duplicate inside one chunk (or across a boundary)
    sex = rng.choice(["female", "male"], size=n).astype(object)
    sex[rng.random(n) < 0.02] = None
    region = rng.choice(["sweden", "nordic", "eu", "outside_eu"], size=n, p=[0.6, 0.1, 0.2, 0.1]).astype(object)
    rent = np.round(rng.gamma(4, 1500, size=n) + np.where(region == "outside_eu", 900, 0), -2)
    rent[rng.random(n) < 0.1] = 0.0  # a point mass at 0, as incomes have
    rent[rng.random(n) < 0.05] = np.nan
    income = rng.gamma(2, 5000, size=n)
    income[rng.random(n) < np.where(region == "sweden", 0.05, 0.15)] = np.nan
    failed = rng.random(n) < np.where(sex == "female", 0.02, 0.06)
    outcome = rng.choice(["grant", "deny", "refer", "oops"], size=n, p=[0.5, 0.3, 0.19, 0.01]).astype(object)
    return pd.DataFrame({
        "case_id": pd.array(ids, dtype="str"), "sex": pd.array(sex, dtype="str"),
        "birth_region": pd.array(region, dtype="str"), "rent": rent, "income_wages": income,
        "registry_read_failed": failed, "outcome": pd.array(outcome, dtype="str"),
        "adults": rng.integers(0, 4, size=n),
    })


SUITE = {
    "name": "merge",
    "groups": ["sex", "birth_region"],
    "expectations": [
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["case_id", "sex"],
                                                                 "exact_match": False}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "rent", "type_": "float64"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "case_id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "sex"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "outcome",
                                                                  "value_set": ["grant", "deny", "refer"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "outcome", "mostly": 0.98,
                                                                  "value_set": ["grant", "deny", "refer"]}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "adults", "min_value": 1,
                                                                   "max_value": 2}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "rent", "max_value": 12000}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "case_id", "regex": "^c0[0-4]"}},
        {"type": "expect_table_text_values_to_not_contain_personnummer", "kwargs": {}},
        {"type": "expect_column_group_representation_to_be_at_least",
         "kwargs": {"min_count": 40, "expected_groups": ["unknown"]}},
        {"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "income_wages", "max_gap": 0.05}},
        {"type": "expect_column_failure_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "registry_read_failed", "max_gap": 0.02, "min_group_size": 30}},
        {"type": "expect_column_proxy_strength_to_be_at_most", "kwargs": {"column": "rent", "max_cramers_v": 0.05}},
        {"type": "expect_column_proxy_strength_to_be_at_most",
         "kwargs": {"column": "rent", "max_cramers_v": 0.05, "bins": 3, "bias_correction": False}},
        {"type": "expect_column_proxy_strength_to_be_at_most", "kwargs": {"column": "adults", "max_cramers_v": 0.4}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
    ],
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory):
    import yaml

    path = tmp_path_factory.mktemp("suite") / "merge.yaml"
    path.write_text(yaml.safe_dump(SUITE))
    return load_suite(path)


@pytest.mark.parametrize("chunk_size", [97, 1_000, 3_000])
def test_merged_chunks_equal_the_whole_frame(suite, chunk_size: int) -> None:
    frame = _frame(3_000, seed=7)
    whole = validate(frame, [suite], step="intake").to_dict()
    entries, statistics = [], []
    for start in range(0, len(frame), chunk_size):
        part = frame.iloc[start:start + chunk_size].reset_index(drop=True)
        with collecting_statistics() as collected:
            report = validate(part, [suite], step="intake")
        entries.append([{"step": "intake", "policy": "warn", **report.to_dict()}])
        statistics.append(collected)
    merged = merge_chunk_checks(entries, statistics)
    assert len(merged) == len(whole["results"])
    for r, m in zip(whole["results"], merged, strict=True):
        assert m["exact"] is True, m
        for k in COMPARED:
            assert m[k] == r[k], (r["expectation"], r["column"], k, m[k], r[k])
    by_type = {}
    for r in whole["results"]:
        by_type.setdefault(r["expectation"], []).append(r)
    # the data does what the test means: duplicates (one across chunks), failures, a defined V and gaps
    assert by_type["expect_column_values_to_be_unique"][0]["unexpected_count"] == 4
    assert not by_type["expect_column_values_to_be_in_set"][0]["success"]
    assert by_type["expect_column_values_to_be_in_set"][1]["success"]  # mostly 0.98 tolerates the 1 %
    assert all(r["observed_value"] is not None for r in by_type["expect_column_proxy_strength_to_be_at_most"])
    assert by_type["expect_column_group_representation_to_be_at_least"][0]["observed_value"] == 0  # "unknown"


def test_pooled_quantiles_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 17, 1000, 12345):
        x = np.round(rng.gamma(2, 3, size=n), 1)
        x[rng.random(n) < 0.3] = 0.0
        values, counts = np.unique(x, return_counts=True)
        for bins in (2, 3, 5, 7):
            qs = np.linspace(0.0, 1.0, bins + 1)
            expected = np.quantile(x, qs)
            got = linear_quantiles(values, counts, qs)
            assert np.array_equal(got, expected), (n, bins, got, expected)


def _pairs(frame: pd.DataFrame, numeric: bool) -> dict:
    """Pair counts of (x, y) computed by pandas, in the form the chunks return."""
    g = frame.dropna().groupby(["x", "y"]).size()
    xs = g.index.get_level_values("x").to_numpy(dtype=np.float64 if numeric else object)
    return {"x": xs, "y": g.index.get_level_values("y").to_numpy(dtype=object),
            "count": g.to_numpy(dtype=np.int64), "x_numeric": numeric, "y_numeric": False}


@pytest.mark.parametrize("numeric", [True, False])
def test_summed_pair_counts_are_the_whole_frames_and_give_the_same_cramers_v(numeric: bool) -> None:
    from audit.checks import sum_pair_counts
    from audit.checks._merge import proxy_from_pair_counts

    rng = np.random.default_rng(7)
    n = 6_000
    x = np.round(rng.lognormal(8, 1, n)) if numeric else rng.choice(["a", "b", "c", "d"], n).astype(object)
    y = rng.choice(["sweden", "eu", "outside"], n).astype(object)
    frame = pd.DataFrame({"x": x, "y": y})
    frame.loc[::97, "x"] = np.nan if numeric else None
    parts = [_pairs(frame.iloc[a:b], numeric) for a, b in ((0, 1_000), (1_000, 3_500), (3_500, n))]
    whole = _pairs(frame, numeric)
    total = sum_pair_counts(parts)
    got = pd.Series(total["count"], index=pd.MultiIndex.from_arrays([total["x"], total["y"]])).sort_index()
    expected = pd.Series(whole["count"], index=pd.MultiIndex.from_arrays([whole["x"], whole["y"]])).sort_index()
    pd.testing.assert_series_equal(got, expected)
    assert int(total["count"].sum()) == n - len(range(0, n, 97))
    assert total["x"].dtype == (np.float64 if numeric else object)
    # a running sum, two parts at a time, is the same sum
    running = parts[0]
    for p in parts[1:]:
        running = sum_pair_counts([running, p])
    for key in ("x", "y", "count"):
        np.testing.assert_array_equal(running[key], total[key])
    # Cramér's V of the sum equals V of the parts pooled and of the whole frame's counts, exactly
    for bins in (3, 5):
        v_parts = proxy_from_pair_counts(parts, bins=bins, bias_correction=True)
        assert proxy_from_pair_counts([total], bins=bins, bias_correction=True) == v_parts
        assert proxy_from_pair_counts([whole], bins=bins, bias_correction=True) == v_parts
    with pytest.raises(ValueError, match="disagree on which axis is numeric"):
        sum_pair_counts([parts[0], {**parts[1], "x_numeric": not numeric}])


@pytest.mark.parametrize("seed", range(3))
def test_sorted_codes_of_numbers_equal_numpy_unique(seed: int) -> None:
    """The pair sums' codes of numbers (by hashing) equal ``numpy.unique(return_inverse=True)``: NaN, 0.0 and -0.0."""
    from audit.checks._merge import _sorted_codes

    rng = np.random.default_rng(seed)
    floats = np.round(rng.normal(0, 3, 20_000), 1)
    floats[rng.integers(0, len(floats), 300)] = np.nan
    floats[rng.integers(0, len(floats), 300)] = -0.0
    floats[rng.integers(0, len(floats), 30)] = rng.choice([np.inf, -np.inf], 30)
    for values in (floats, rng.integers(-50, 10_000, 20_000), np.array([], dtype=np.int64)):
        codes, distinct = _sorted_codes(values)
        want_distinct, want_codes = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(distinct, want_distinct)
        np.testing.assert_array_equal(codes, want_codes.ravel())
        assert codes.dtype == np.int64
