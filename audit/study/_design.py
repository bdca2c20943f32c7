"""The design of a study: which scenarios (points) run, and with which seeds.

A *point* is one assignment of a level to every factor; a *run* is one
replicate of one point. ``design: grid`` runs every combination of levels;
``random`` draws K points uniformly (a list of levels is drawn from, a range
is sampled continuously); ``latin_hypercube`` draws K points with
:class:`scipy.stats.qmc.LatinHypercube`, so that every factor's range is
covered evenly. The draws use the study's seed, so a study always expands to
the same points.

Every run's audit seed derives from the study seed, the point and the
replicate through :class:`numpy.random.SeedSequence`: deterministic,
independent across runs, and unchanged when points or replicates are added.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

from audit.study_spec import FactorRange, StudySpec

__all__ = ["Point", "RunTask", "derive_seed", "expand_points", "run_key", "set_key"]


@dataclass(frozen=True)
class Point:
    """One scenario of a study: its index and the level of every factor (key path -> value)."""

    index: int
    levels: dict[str, Any]

    @property
    def name(self) -> str:
        """The point's name in file names: ``p0003``."""
        return f"p{self.index:04d}"


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to run one replicate of one point (picklable, no open files)."""

    key: str
    point: int
    replicate: int
    seed: int
    levels: dict[str, Any]
    audit: dict[str, Any]
    base_dir: str
    source: str


def run_key(point: int, replicate: int) -> str:
    """The run's name in ``runs/``: ``p0003-r0012``."""
    return f"p{point:04d}-r{replicate:04d}"


def derive_seed(study_seed: int, point: int, replicate: int) -> int:
    """The audit seed of one run: a 31-bit integer from ``SeedSequence(study_seed, spawn_key=(point, replicate))``."""
    state = np.random.SeedSequence(study_seed, spawn_key=(point, replicate)).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def expand_points(study: StudySpec) -> list[Point]:
    """The points of a study, in a stable order.

    Parameters
    ----------
    study : StudySpec

    Returns
    -------
    list of Point
        One point without levels when the study has no factors.
    """
    keys = list(study.factors)
    if not keys:
        return [Point(0, {})]
    if study.design == "grid":
        levels = [_grid_levels(study.factors[k]) for k in keys]
        return [Point(i, dict(zip(keys, combo, strict=True))) for i, combo in enumerate(itertools.product(*levels))]
    k = int(study.points or 1)
    if study.design == "random":
        u = np.random.default_rng(study.seed).random((k, len(keys)))
    else:
        u = qmc.LatinHypercube(d=len(keys), seed=np.random.default_rng(study.seed)).random(k)
    return [Point(i, {key: _draw(study.factors[key], float(u[i, j])) for j, key in enumerate(keys)})
            for i in range(k)]


def _grid_levels(factor: list[Any] | FactorRange) -> list[Any]:
    return list(factor) if isinstance(factor, list) else factor.grid()


def _draw(factor: list[Any] | FactorRange, u: float) -> Any:
    if isinstance(factor, list):
        return factor[min(int(u * len(factor)), len(factor) - 1)]
    return factor.at(u)


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the nested dict ``data`` with the dotted key path ``key`` set to ``value``."""
    out = dict(data)
    head, _, rest = key.partition(".")
    if not rest:
        out[head] = value
        return out
    inner = out.get(head)
    out[head] = set_key(inner if isinstance(inner, dict) else {}, rest, value)
    return out
