"""Insyn: audit automated decisions on social assistance for bias and unfairness."""

from audit._version import __version__
from audit.exceptions import CheckFailedError, DataError, EngineError, InsynError, SpecError
from audit.result import AuditResult
from audit.spec import Audit, load_spec

__all__ = [
    "Audit",
    "AuditResult",
    "CheckFailedError",
    "DataError",
    "EngineError",
    "InsynError",
    "SpecError",
    "__version__",
    "load_spec",
]
