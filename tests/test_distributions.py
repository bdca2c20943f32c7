"""audit._distributions against scipy.stats: the same values without importing scipy.stats on the run's path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from audit._distributions import beta_ppf, fisher_exact_pvalue, norm_ppf, norm_sf, t_ppf, t_sf

RNG = np.random.default_rng(20261207)
Q = np.r_[RNG.random(2000), 0.5, 0.975, 0.025, 0.995, 1e-12, 1 - 1e-12]
X = np.r_[RNG.normal(0, 4, 2000), 0.0, 1.96, -1.96, 40.0, -40.0, np.inf]
DF = np.r_[RNG.integers(1, 2000, 2000).astype(float), 1.0, 2.0, 3.0, np.inf, 0.5, 1e6]


def test_normal_and_t_are_bit_identical_to_scipy_stats() -> None:
    np.testing.assert_array_equal(norm_ppf(Q), stats.norm.ppf(Q))
    np.testing.assert_array_equal(norm_sf(X), stats.norm.sf(X))
    np.testing.assert_array_equal(t_ppf(Q, DF), stats.t.ppf(Q, DF))
    np.testing.assert_array_equal(t_sf(X, DF), stats.t.sf(X, DF))
    assert float(norm_ppf(0.975)) == pytest.approx(1.959963984540054, abs=1e-15)


def test_beta_quantiles_for_clopper_pearson_are_bit_identical() -> None:
    k = RNG.integers(0, 300, 3000).astype(float)
    n = k + RNG.integers(0, 300, 3000)
    for q, a, b in ((0.025, k, n - k + 1), (0.975, k + 1, n - k)):
        np.testing.assert_array_equal(beta_ppf(q, a, b), stats.beta.ppf(q, a, b))  # NaN where a shape is 0, too


@pytest.mark.parametrize("scale", [6, 25, 120, 3000])
def test_fisher_exact_agrees_with_scipy_over_random_tables(scale: int) -> None:
    rng = np.random.default_rng(scale)
    for _ in range(1500):
        cells = rng.integers(0, scale, 4)
        if rng.random() < 0.15:
            cells[rng.integers(4)] = 0
        table = cells.reshape(2, 2).tolist()
        expected = stats.fisher_exact(table, alternative="two-sided").pvalue
        assert fisher_exact_pvalue(table) == pytest.approx(expected, rel=1e-9, abs=1e-300), table


def test_fisher_exact_published_and_edge_values() -> None:
    # scipy's documented example (and R: fisher.test(matrix(c(8,1,2,5),2))$p.value = 0.03497)
    assert fisher_exact_pvalue([[8, 2], [1, 5]]) == pytest.approx(0.034965034965034975, rel=1e-12)
    assert fisher_exact_pvalue([[5, 5], [5, 5]]) == 1.0  # the most probable table
    assert fisher_exact_pvalue([[0, 0], [3, 4]]) == 1.0  # an empty row
    with pytest.raises(ValueError, match="non-negative"):
        fisher_exact_pvalue([[1, -1], [2, 3]])


def test_an_audit_run_does_not_import_scipy_stats() -> None:
    """Importing scipy.stats costs about a second; the run's path (CLI, runner, metrics, report) must not."""
    code = ("import sys, audit.cli, audit.runner, audit.metrics, audit.report, audit.record; "
            "print(sorted(m for m in sys.modules if m == 'scipy.stats'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
