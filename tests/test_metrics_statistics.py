"""Sufficient statistics: one pass, and the same numbers from rows, chunks and partitions."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from audit.exceptions import DataError
from audit.metrics import GroupStatistics, measure, measure_statistics

SENSITIVE = ["sex", "birth_region"]


def make_frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Random measurement frame with missing sensitive values, amounts and scores."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["ok", "error", "quarantined"], n, p=[0.95, 0.03, 0.02])
    outcome = rng.choice(["grant", "partial", "deny", "refer"], n).astype(object)
    final = np.where(outcome == "refer", rng.choice(["grant", "deny"], n), outcome)
    outcome[status == "error"] = "error"
    final[status == "error"] = "error"
    truth = rng.choice(["grant", "partial", "deny"], n)
    truth_amount = np.where(truth == "deny", 0.0, np.round(rng.uniform(100, 20000, n), 2))
    final_amount = np.where(np.isin(final, ["grant", "partial"]), np.round(rng.uniform(100, 20000, n), 2), np.nan)
    region = rng.choice(["sweden", "eu", "outside_eu", "nordic"], n).astype(object)
    region[rng.random(n) < 0.01] = None
    return pd.DataFrame(
        {
            "case_id": [f"id{i}" for i in range(n)],
            "sex": pd.Series(rng.choice(["female", "male"], n), dtype="str"),
            "birth_region": pd.Series(region, dtype="str"),
            "status": pd.Series(status, dtype="str"),
            "outcome": pd.Series(outcome, dtype="str"),
            "final_outcome": pd.Series(final, dtype="str"),
            "amount": final_amount,
            "final_amount": final_amount,
            "truth_outcome": pd.Series(truth, dtype="str"),
            "truth_amount": truth_amount,
            "score": np.round(rng.random(n), 6),
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def whole(frame: pd.DataFrame) -> GroupStatistics:
    return GroupStatistics.from_frame(frame, sensitive_features=SENSITIVE)


def test_channels_equal_a_pandas_groupby(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    ch = whole.channels().set_index(SENSITIVE)
    keys = [frame["sex"], frame["birth_region"].fillna("(missing)")]
    ok = frame["status"].eq("ok")
    refer = ok & frame["outcome"].eq("refer")
    expected = pd.DataFrame({"rows": 1, "ok": ok, "refer": refer}).groupby(keys).sum()
    for col in ("rows", "ok", "refer"):
        assert (ch[col].sort_index() == expected[col].sort_index().astype(float)).all(), col
    owed = ok & (frame["truth_amount"] > 0)
    granted = frame["final_amount"].fillna(0).where(owed, 0)
    sums = granted.groupby(keys).sum().sort_index()
    np.testing.assert_allclose(ch["granted"].sort_index(), sums, rtol=1e-12)
    assert whole.n_atoms == len(expected) == 10
    assert "(missing)" in set(whole.keys["birth_region"])


def test_chunks_add_up_exactly(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    bounds = [0, 700, 1500, 2600, len(frame)]
    parts = [GroupStatistics.from_frame(frame.iloc[a:b], sensitive_features=SENSITIVE)
             for a, b in zip(bounds[:-1], bounds[1:])]
    assert parts[0] + parts[1] + parts[2] + parts[3] == whole
    assert sum(parts) == whole
    # a chunk that lacks some atoms still adds up
    lacking = frame[frame["birth_region"].ne("nordic")]
    rest = frame[frame["birth_region"].eq("nordic")]
    a = GroupStatistics.from_frame(lacking, sensitive_features=SENSITIVE)
    b = GroupStatistics.from_frame(rest, sensitive_features=SENSITIVE)
    assert a.n_atoms < whole.n_atoms and b + a == whole
    # and so do the metrics computed from them
    pd.testing.assert_frame_equal(measure_statistics(sum(parts), seed=2),
                                  measure(frame, sensitive_features=SENSITIVE, seed=2))


def test_sums_are_exact_for_large_amounts() -> None:
    """Squares of 9,999,999.99 SEK in öre are ~1e18; 20 of them overflow int64 unless split."""
    n = 20
    df = pd.DataFrame({
        "case_id": [f"x{i}" for i in range(n)], "sex": "f", "status": "ok", "outcome": "grant",
        "final_outcome": "grant", "final_amount": 9_999_999.99, "truth_outcome": "grant",
        "truth_amount": 9_999_999.99,
    })
    st = GroupStatistics.from_frame(df, sensitive_features=["sex"])
    assert st.sums["granted_sq"][0] == 20 * 999_999_999 ** 2
    assert st.sums["granted"][0] == 20 * 999_999_999


def test_adding_incompatible_statistics_is_an_error(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    no_truth = GroupStatistics.from_frame(frame.drop(columns=["truth_outcome", "truth_amount", "score"]),
                                          sensitive_features=SENSITIVE)
    with pytest.raises(DataError, match="cannot add statistics built from different columns"):
        whole + no_truth
    other_labels = GroupStatistics.from_frame(frame, sensitive_features=SENSITIVE, favourable=("grant",))
    with pytest.raises(DataError, match="different outcome options"):
        whole + other_labels
    with pytest.raises(DataError, match="different sensitive features"):
        whole + GroupStatistics.from_frame(frame, sensitive_features=["sex"])


def test_dask_partitions_give_identical_statistics(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    dd = pytest.importorskip("dask.dataframe")
    import dask

    with dask.config.set({"dataframe.convert-string": False, "scheduler": "synchronous"}):
        ddf = dd.from_pandas(frame, npartitions=4)
        assert ddf.npartitions == 4
        got = GroupStatistics.from_dask(ddf, sensitive_features=SENSITIVE)
    assert got == whole


def test_dask_with_string_conversion_on_still_identical(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    """dask's default turns str into string[pyarrow] with pd.NA; the statistics must not change."""
    dd = pytest.importorskip("dask.dataframe")
    import dask

    with dask.config.set({"dataframe.convert-string": True, "scheduler": "synchronous"}):
        ddf = dd.from_pandas(frame, npartitions=3)
        got = GroupStatistics.from_dask(ddf, sensitive_features=SENSITIVE)
    assert got == whole


@pytest.mark.slow
def test_dask_distributed_cluster_gives_identical_statistics(frame: pd.DataFrame, whole: GroupStatistics) -> None:
    pytest.importorskip("dask.distributed")
    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    with dask.config.set({"dataframe.convert-string": False}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
                               silence_logs=logging.ERROR)
        try:
            with Client(cluster):
                ddf = dd.from_pandas(frame, npartitions=4)
                got = GroupStatistics.from_dask(ddf, sensitive_features=SENSITIVE)
        finally:
            cluster.close()
    assert got == whole
