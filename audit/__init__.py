"""Insyn: audit automated decisions on social assistance for bias and unfairness.

This facade is the top of the uses layer: it names the public surface and
wires the results layer together. :class:`AuditResult` carries no rendering
(the report reads results, so a result must not import the report); the
facade hands it the report's notebook summary with
:func:`audit.result.set_html_summary`. Python runs this file before any
``audit.*`` module, so every result shows its summary in a notebook.
"""

from audit._version import __version__
from audit.audit import Audit, load_spec
from audit.exceptions import CheckFailedError, DataError, EngineError, InsynError, SpecError
from audit.report import render_summary_html as _render_summary_html
from audit.result import AuditResult
from audit.result import set_html_summary as _set_html_summary

_set_html_summary(_render_summary_html)

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
