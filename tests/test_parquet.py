"""Insyn's Parquet writer: statistics for the case id and non-text columns only, the same table read back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audit._parquet import statistics_columns, write_frame, write_table


def _stats(path) -> dict[str, bool]:
    """Whether each column of the first row group has statistics, read from the file's footer."""
    rg = pq.ParquetFile(path).metadata.row_group(0)
    return {rg.column(i).path_in_schema: rg.column(i).is_stats_set for i in range(rg.num_columns)}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": ["c2", "c1", "c3"],
        "amount": [1.5, np.nan, 3.0],
        "n": pd.array([1, None, 3], dtype="Int64"),
        "ok": [True, False, True],
        "status": ["ok", "error", "ok"],
        "group": pd.Series(["a", "b", "a"], dtype="category"),
        "mixed": np.array(["x", None, "z"], dtype=object),
    })


def test_write_frame_keeps_statistics_for_case_id_and_numbers_only(tmp_path):
    write_frame(_frame(), tmp_path / "f.parquet")
    assert _stats(tmp_path / "f.parquet") == {"case_id": True, "amount": True, "n": True, "ok": True,
                                             "status": False, "group": False, "mixed": False}
    rg = pq.ParquetFile(tmp_path / "f.parquet").metadata.row_group(0)
    assert (rg.column(0).statistics.min, rg.column(0).statistics.max) == ("c1", "c3")  # what a reader filters on


def test_write_frame_reads_back_as_to_parquet_writes(tmp_path):
    frame = _frame()
    write_frame(frame, tmp_path / "ours.parquet")
    frame.to_parquet(tmp_path / "pandas.parquet", index=False)
    ours, theirs = pq.read_table(tmp_path / "ours.parquet"), pq.read_table(tmp_path / "pandas.parquet")
    assert ours.equals(theirs) and ours.schema.metadata == theirs.schema.metadata
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ours.parquet"), pd.read_parquet(tmp_path / "pandas.parquet"))
    assert all(_stats(tmp_path / "pandas.parquet").values())  # the default writes them all: the difference is real


def test_write_table_statistics_by_arrow_type(tmp_path):
    table = pa.table({
        "case_id": pa.array(["a", "b"], pa.large_string()),
        "step": pa.array(["x", "y"]).dictionary_encode(),
        "view": pa.array(["p", "q"], pa.string_view()),
        "step_index": pa.array([1, 2], pa.int16()),
        "row_hash": pa.array([5, None], pa.uint64()),
    })
    assert statistics_columns(table.schema) == ["case_id", "step_index", "row_hash"]
    write_table(table, tmp_path / "t.parquet", use_dictionary=["step"])
    assert _stats(tmp_path / "t.parquet") == {"case_id": True, "step": False, "view": False, "step_index": True,
                                             "row_hash": True}
    assert pq.read_table(tmp_path / "t.parquet").cast(table.schema).equals(table)
