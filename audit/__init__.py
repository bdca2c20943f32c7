"""Insyn: audit automated decisions on social assistance for bias and unfairness."""

from audit._version import __version__
from audit.exceptions import CheckFailedError, DataError, EngineError, InsynError, SpecError
from audit.result import AuditResult
from audit.spec import load_spec

# PENDING (core redesign, helper C): replace the next line by `from audit.audit import Audit`
# once audit/audit.py exists. Until then `audit.Audit` is the bare spec model and has no `.run`.
from audit.spec import AuditSpec as Audit  # noqa: E402  PENDING helper C

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
