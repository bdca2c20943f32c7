"""Python engines: a function, a class or an object, named ``package.module:attr``.

Many decision engines under audit are, or can be wrapped as, Python code: a
vectorised function written by the municipality's analysts, a class around a
vendor library, a per-case routine ported from the RPA tool. The ``python``
adapter accepts each of these forms:

* a function ``f(cases, **options) -> DataFrame`` (vectorised);
* a function marked with :func:`per_case`, ``f(case, **options) -> mapping``,
  called once per case with the case as a plain dict;
* a class, instantiated with ``**options``, whose instances have
  ``decide(cases)`` or ``decide_case(case)``;
* an object that already has ``decide(cases)`` or ``decide_case(case)``.

A per-case engine that raises for one case gets an ``error`` for that case
only; the others are decided. A call that does not return within
``engine.batch_timeout_s`` (default :attr:`PythonEngine.default_timeout_s`,
600 s per batch) makes its batch's cases errors with reason ``timeout``. Per-case engines are slow by nature; run them
on several worker processes with ``workers`` (see
:func:`audit.engine.run_engine`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from audit._paths import resolve_path, sha256_file
from audit.engine._protocol import short_repr
from audit.exceptions import DataError, SpecError

__all__ = ["DEFAULT_BATCH_TIMEOUT_S", "PythonEngine", "per_case"]

DEFAULT_BATCH_TIMEOUT_S = 600.0
"""Seconds a Python engine may take for one batch when the spec sets no ``engine.batch_timeout_s``.

Like the subprocess engine's default, it makes sure that a hung engine (a ``time.sleep(1e9)``, a lock that is never
released, a request without a timeout) never hangs the audit: the batch's cases end as errors with reason
``timeout`` and the audit goes on (see :mod:`audit.engine._parallel` for what happens to the hung call)."""

F = TypeVar("F", bound=Callable[..., Any])
_PER_CASE_MARK = "__insyn_per_case__"


def per_case(func: F) -> F:
    """Mark a function as a per-case engine: ``func(case: dict, **options) -> mapping``.

    The mapping holds ``outcome`` and optionally ``amount``, ``score``,
    ``reasons`` (a ``;``-joined string or a list of codes) and ``error``.

    Examples
    --------
    >>> @per_case
    ... def decide_case(case):
    ...     return {"outcome": "refer" if case["interpreter"] else "grant"}
    """
    setattr(func, _PER_CASE_MARK, True)
    return func


def _import_target(target: str, base_dir: Path | None) -> Any:
    """Import ``package.module:attr``; fall back to ``<base_dir>/package/module.py``."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise SpecError(f"engine.target must have the form 'package.module:attr'. Got {target!r}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise SpecError(f"engine.target {target!r}: importing {module_name!r} failed: {exc}.") from None
        module = _import_from_file(module_name, base_dir)
        if module is None:
            raise SpecError(
                f"engine.target {target!r}: no module named {module_name!r}. Expected a module on the Python "
                f"path or a file {module_name.replace('.', '/')}.py next to the spec."
            ) from None
    except (Exception, SystemExit) as exc:  # an engine module calling sys.exit() must not end the audit
        raise SpecError(
            f"engine.target {target!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}."
        ) from None
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            owner = getattr(obj, "__name__", module_name)
            raise SpecError(f"engine.target {target!r}: {owner!r} has no attribute {part!r}.")
        obj = getattr(obj, part)
    return obj


def _import_from_file(module_name: str, base_dir: Path | None) -> Any:
    rel = Path(*module_name.split(".")).with_suffix(".py")
    path = resolve_path(rel, base_dir)
    if not path.is_file():
        return None
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so that the engine pickles by reference
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        raise SpecError(f"engine.target: running {path} failed: {type(exc).__name__}: {exc}.") from None
    return module


def _source_hash(obj: Any) -> str | None:
    """SHA-256 of the file that defines ``obj`` (its module's source file)."""
    holder = obj if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) else type(obj)
    try:
        path = inspect.getsourcefile(holder)
    except TypeError:
        return None
    if path is None or not Path(path).is_file():
        return None
    return sha256_file(path)


def _qualname(obj: Any) -> str:
    holder = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    return f"{holder.__module__}:{holder.__qualname__}"


class PythonEngine:
    """Wrap Python code as an engine.

    Parameters
    ----------
    target : callable, class or object
        See the module docstring for the accepted forms.
    options : mapping, optional
        Keyword arguments for the class constructor or the function.
    name, version : str, optional
        Override the name (default: the object's ``name`` or
        ``module:qualname``) and version (default: the object's ``version``,
        the module's ``__version__`` or a hash of the source file).

    Raises
    ------
    SpecError
        When ``target`` is none of the accepted forms or the class cannot be
        built with ``options``.
    """

    default_timeout_s: float = DEFAULT_BATCH_TIMEOUT_S
    """Seconds per batch that :func:`audit.engine.run_engine` allows when it is given no ``timeout_s`` (600)."""

    def __init__(
        self,
        target: Any,
        *,
        options: Mapping[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        opts = dict(options or {})
        shown = getattr(target, "__qualname__", type(target).__name__)
        self._options: dict[str, Any] = {}
        if inspect.isclass(target):
            try:
                obj = target(**opts)
            except SystemExit as exc:
                raise SpecError(f"building {shown}(...) called sys.exit({exc.code!r}).") from None
            except TypeError as exc:
                raise SpecError(f"engine.options do not fit {shown}(...): {exc}.") from None
        else:
            obj = target
        if hasattr(obj, "decide") and callable(obj.decide) and not inspect.isclass(obj):
            self._mode = "object"
        elif hasattr(obj, "decide_case") and callable(obj.decide_case):
            self._mode = "object_per_case"
        elif inspect.isroutine(obj) or (callable(obj) and not inspect.isclass(obj)):
            self._mode = "function_per_case" if getattr(obj, _PER_CASE_MARK, False) else "function"
            self._options = {} if inspect.isclass(target) else opts
        else:
            raise SpecError(
                f"engine.target must be a function, a class or an object with decide(cases) or "
                f"decide_case(case). Got {short_repr(obj)}."
            )
        if opts and not inspect.isclass(target) and not self._options:
            raise SpecError(f"engine.options are given, but {shown} is an object that takes no options.")
        self._obj = obj
        self.definition_hash: str | None = _source_hash(target)
        own_name = getattr(obj, "name", None)
        self.name: str = name or (own_name if isinstance(own_name, str) and own_name else _qualname(target))
        own_version = getattr(obj, "version", None)
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        mod_version = getattr(module, "__version__", None) if module is not None else None
        if version:
            self.version: str = version
        elif isinstance(own_version, str) and own_version:
            self.version = own_version
        elif isinstance(mod_version, str) and mod_version:
            self.version = mod_version
        elif self.definition_hash:
            self.version = f"sha256:{self.definition_hash[:12]}"
        else:
            self.version = "unversioned"
        sees = getattr(obj, "sees", None)
        self.sees: tuple[str, ...] | None = tuple(sees) if sees is not None else None
        self.required_columns: tuple[str, ...] = tuple(getattr(obj, "required_columns", ()) or ())

    @classmethod
    def from_target(
        cls,
        target: str,
        *,
        base_dir: str | Path | None = None,
        options: Mapping[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> PythonEngine:
        """Import ``package.module:attr`` and wrap it.

        A module that is not importable is looked for as a file
        ``package/module.py`` under ``base_dir`` (then among the examples
        that ship with Insyn), so a spec can name an engine that lives next
        to it, e.g. ``examples.engines.per_case_engine:decide_case``.
        """
        obj = _import_target(target, Path(base_dir) if base_dir is not None else None)
        return cls(obj, options=options, name=name or target, version=version)

    @property
    def per_case(self) -> bool:
        """True when the engine decides one case at a time."""
        return self._mode in {"object_per_case", "function_per_case"}

    def __repr__(self) -> str:
        return f"PythonEngine(name={self.name!r}, version={self.version!r}, per_case={self.per_case})"

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Decide the cases with the wrapped code (see :class:`audit.engine.Engine`)."""
        if self._mode == "object":
            return self._obj.decide(cases)
        if self._mode == "function":
            return self._obj(cases, **self._options)
        func = self._obj.decide_case if self._mode == "object_per_case" else self._obj
        return _decide_each(func, cases, self._options)


def _decide_each(func: Callable[..., Any], cases: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """Call a per-case function on every row; an exception marks only its own case."""
    records = cases.to_dict("records")
    n = len(records)
    outcome = np.empty(n, dtype=object)
    amount = np.full(n, np.nan, dtype=object)
    score = np.full(n, np.nan, dtype=object)
    reasons = np.full(n, "", dtype=object)
    error = np.full(n, "", dtype=object)
    extras: dict[str, np.ndarray] = {}
    for i, case in enumerate(records):
        try:
            answer = func(case, **options)
        except (SpecError, DataError):
            raise
        except Exception as exc:
            error[i] = f"{type(exc).__name__}: {exc}"
            continue
        except SystemExit as exc:  # contained: one case ends as an error, the audit goes on
            error[i] = f"the engine called sys.exit({exc.code!r})"
            continue
        if not isinstance(answer, Mapping):
            error[i] = (
                f"decide_case returned a {type(answer).__name__}; expected a mapping with outcome, amount, reasons"
            )
            continue
        outcome[i] = answer.get("outcome")
        amount[i] = answer.get("amount", np.nan)
        score[i] = answer.get("score", np.nan)
        r = answer.get("reasons", "")
        reasons[i] = ";".join(map(str, r)) if isinstance(r, (list, tuple)) else ("" if r is None else str(r))
        e = answer.get("error")
        if e:
            error[i] = str(e)
        for key, value in answer.items():
            if key in {"case_id", "outcome", "amount", "score", "reasons", "error"}:
                continue
            if key not in extras:
                extras[key] = np.full(n, None, dtype=object)
            extras[key][i] = value
    frame = pd.DataFrame(
        {
            "case_id": cases["case_id"].to_numpy() if "case_id" in cases.columns else np.arange(n).astype(str),
            "outcome": outcome,
            "amount": _maybe_float(amount),
            "score": _maybe_float(score),
            "reasons": pd.array(reasons, dtype="str"),
            "error": pd.array(error, dtype="str"),
        }
    )
    for key, values in extras.items():
        frame[key] = values
    return frame


def _maybe_float(values: np.ndarray) -> np.ndarray:
    """Return float64 when every value is a plain number; otherwise leave the values for the contract check."""
    try:
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
            return values.astype(float)
    except (TypeError, ValueError):  # pragma: no cover - guarded by the isinstance test
        pass
    return values
