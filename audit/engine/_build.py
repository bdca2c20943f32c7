"""Build the engine that an audit spec names.

The ``engine:`` block of an audit spec says which adapter to use and how to
configure it (see DESIGN.md). :func:`build_engine` turns a validated
:class:`audit.spec.EngineSpec` into an :class:`audit.engine.Engine`, resolving
relative paths against the spec's folder, so that the runner never needs to
know one adapter from another.
"""

from __future__ import annotations

from pathlib import Path

from audit._paths import resolve_path
from audit.engine._http import HttpEngine
from audit.engine._python import PythonEngine
from audit.engine._recorded import RecordedEngine
from audit.engine._rules import RulesEngine
from audit.engine._sklearn import SklearnEngine
from audit.engine._subprocess import SubprocessEngine
from audit.engine._protocol import Engine
from audit.exceptions import SpecError
from audit.norms import ReferenceEngine
from audit.spec import EngineSpec

__all__ = ["build_engine"]

_HTTP_DEFAULT_BATCH = 500


def build_engine(spec: EngineSpec, *, base_dir: str | Path) -> Engine:
    """Build the engine described by an ``engine:`` (or ``compare:``) block.

    Parameters
    ----------
    spec : audit.spec.EngineSpec
        The validated block; its kind-specific keys are already checked.
    base_dir : str or Path
        The spec's folder: relative paths resolve against it (and fall back
        to the files that ship with Insyn), and subprocess commands run in it.

    Returns
    -------
    Engine
        ``python`` -> :class:`PythonEngine`, ``sklearn`` ->
        :class:`SklearnEngine` (warns that loading unpickles),
        ``rules`` -> :class:`RulesEngine`, ``http`` -> :class:`HttpEngine`,
        ``subprocess`` -> :class:`SubprocessEngine`, ``recorded`` ->
        :class:`RecordedEngine`, ``reference`` ->
        :class:`audit.norms.ReferenceEngine` with ``options``.

    Raises
    ------
    SpecError
        When a file is missing or a key does not fit the engine.
    """
    base = Path(base_dir)
    kind = spec.kind
    engine: Engine
    if kind == "python":
        assert spec.target is not None  # checked by EngineSpec
        engine = PythonEngine.from_target(spec.target, base_dir=base, options=spec.options, name=spec.name)
    elif kind == "sklearn":
        assert spec.path is not None
        engine = SklearnEngine.from_file(
            resolve_path(spec.path, base),
            labels=spec.labels,
            threshold=spec.threshold,
            method=spec.method,
            score=spec.score,
            **({"name": spec.name} if spec.name else {}),
        )
    elif kind == "rules":
        assert spec.path is not None
        engine = RulesEngine(resolve_path(spec.path, base), options=spec.options, name=spec.name)
    elif kind == "http":
        assert spec.url is not None
        engine = HttpEngine(
            spec.url,
            batch_size=spec.batch_size or _HTTP_DEFAULT_BATCH,
            timeout_s=spec.timeout_s,
            retries=spec.retries,
            retry_max_s=spec.retry_max_s,
            concurrency=spec.concurrency,
            protocol=spec.protocol,
            mapping=spec.mapping,
            headers=spec.headers,
            decision=spec.decision,
            name=spec.name,
        )
    elif kind == "subprocess":
        assert spec.command is not None
        engine = SubprocessEngine(
            spec.command,
            format=spec.format,
            timeout_s=spec.timeout_s if "timeout_s" in spec.model_fields_set else None,
            cwd=base,
            name=spec.name,
        )
    elif kind == "recorded":
        assert spec.outcome is not None
        engine = RecordedEngine(
            outcome=spec.outcome,
            amount=spec.amount,
            reasons=spec.reasons,
            score=spec.score,
            path=resolve_path(spec.path, base) if spec.path else None,
            name=spec.name,
        )
    elif kind == "reference":
        try:
            engine = ReferenceEngine(**spec.options)
        except TypeError as exc:
            raise SpecError(f"engine.options do not fit the reference engine: {exc}.") from None
        if spec.name:
            engine.name = spec.name  # type: ignore[misc]
    else:  # pragma: no cover - EngineSpec allows only the kinds above
        raise SpecError(f"engine.kind {kind!r} has no adapter.")
    return engine
