"""The same study gives identical metric values on a Dask LocalCluster and in this process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.study import run_study

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("distributed")


def test_dask_local_cluster_and_local_give_identical_metrics(tmp_path: Path) -> None:
    study = {
        "name": "dask-vs-local", "seed": 4, "replicates": 2,
        "factors": {"population.bias.registry_failure_recent_arrivals": [0.0, 0.2]},
        "audit": {
            "name": "dask-vs-local",
            "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 500},
            "sensitive_features": ["sex", "birth_region"],
            "reference_groups": {"birth_region": "sweden"},
            "engine": {"kind": "rules", "path": str(ROOT / "examples/engines/study-registry-router.yaml")},
            "statistics": {"bootstrap": 0},
            "thresholds": [{"metric": "refer_rate", "ratio_max": 1.25}],
            "report": {"formats": ["json"]},
        },
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    local = run_study(path, out=tmp_path / "local", executor="inprocess")
    dask = run_study(path, out=tmp_path / "dask", executor="dask", workers=2)  # LocalCluster on 127.0.0.1
    assert local.exit_code == dask.exit_code == 0 and local.finished == dask.finished == 4

    def table(folder: Path) -> pd.DataFrame:
        frame = pd.read_parquet(folder / "study.parquet")
        keys = ["run", "row", "metric", "attributes", "group", "name"]
        return frame.sort_values(keys, na_position="first").reset_index(drop=True)

    a, b = table(tmp_path / "local"), table(tmp_path / "dask")
    assert a.shape == b.shape and list(a.columns) == list(b.columns)
    for col in a.columns:
        if pd.api.types.is_float_dtype(a[col]):
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)  # identical, not close
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    assert (tmp_path / "local" / "power.csv").read_text() == (tmp_path / "dask" / "power.csv").read_text()
    assert a["p_adjusted"].notna().sum() > 0
