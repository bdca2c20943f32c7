"""The public surface: small, sorted and complete (in the manner of httpx)."""

from __future__ import annotations

import importlib
import pkgutil

import audit

EXPECTED = {
    "Audit",
    "AuditResult",
    "CheckFailedError",
    "DataError",
    "EngineError",
    "InsynError",
    "SpecError",
    "__version__",
    "load_spec",
}


def test_all_is_sorted_and_complete() -> None:
    assert audit.__all__ == sorted(audit.__all__)
    assert set(audit.__all__) == EXPECTED
    public = {n for n in vars(audit) if not n.startswith("_") and not isinstance(getattr(audit, n), type(audit))}
    assert public <= set(audit.__all__), f"public names missing from __all__: {sorted(public - set(audit.__all__))}"
    for name in audit.__all__:
        assert hasattr(audit, name), name


def test_every_module_has_a_sorted_all_and_a_docstring() -> None:
    for info in pkgutil.walk_packages(audit.__path__, prefix="audit."):
        if info.name.split(".")[-1].startswith("_") or ".tests" in info.name:
            continue
        mod = importlib.import_module(info.name)
        assert mod.__doc__ and len(mod.__doc__.strip()) > 40, f"{info.name} needs a module docstring"
        names = getattr(mod, "__all__", None)
        assert names is not None, f"{info.name} has no __all__"
        assert list(names) == sorted(names), f"{info.name}.__all__ is not sorted"
        for name in names:
            assert hasattr(mod, name), f"{info.name}.__all__ names {name!r}, which it does not define"


def test_exceptions_form_a_shallow_tree() -> None:
    for name in ("SpecError", "DataError", "EngineError", "CheckFailedError"):
        cls = getattr(audit, name)
        assert issubclass(cls, audit.InsynError)
        assert cls.__mro__[1] is audit.InsynError
