"""Decision engines: plug in any engine and hold it to the decision contract.

The auditor's first act is to plug in the engine under audit: a municipal RPA
rule set, a scikit-learn model, a service the municipality runs, a program in
another language, or simply the decisions that were recorded. Each becomes an
:class:`Engine` (``name``, ``version``, ``decide(cases) -> DataFrame``) through
an adapter, and :func:`run_engine` holds every one of them to the decision
contract of DESIGN.md: one decision per case asked for, known labels,
non-negative amounts, and an ``error`` row with a reason for every case the
engine could not decide. No case is ever dropped.

========================  ======================================================
``python``                :class:`PythonEngine`: a function, class or object
``sklearn``               :class:`SklearnEngine`: a fitted estimator or pipeline
``rules``                 :class:`RulesEngine`: a declarative YAML rule set
``http``                  :class:`HttpEngine`: a service (Insyn JSON or DMN)
``subprocess``            :class:`SubprocessEngine`: a program on stdin/stdout
``recorded``              :class:`RecordedEngine`: replayed historical decisions
``reference``             :class:`audit.norms.ReferenceEngine`: the law's baseline
========================  ======================================================

:func:`build_engine` builds the one an audit spec names; :func:`audit.testing.check_engine`
is a conformance suite for engine authors.
"""

from __future__ import annotations

from audit.engine._build import build_engine
from audit.engine._contract import EngineRun, run_engine
from audit.engine._http import HttpEngine
from audit.engine._protocol import Engine
from audit.engine._python import PythonEngine, per_case
from audit.engine._recorded import RecordedEngine
from audit.engine._rules import RulesEngine
from audit.engine._sklearn import SklearnEngine, UnsafeModelWarning
from audit.engine._subprocess import SubprocessEngine

__all__ = [
    "Engine",
    "EngineRun",
    "HttpEngine",
    "PythonEngine",
    "RecordedEngine",
    "RulesEngine",
    "SklearnEngine",
    "SubprocessEngine",
    "UnsafeModelWarning",
    "build_engine",
    "per_case",
    "run_engine",
]
