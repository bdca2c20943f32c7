"""The engine protocol: what Insyn needs from any decision engine.

A municipality's decision robot can be a rule set in an RPA tool, a trained
model, a service on the municipal network, a program in another language or,
when the engine itself is out of reach, only the log of what it decided. The
audit treats them all the same way: hand over a frame of cases, get back one
decision per case in the *decision contract* of DESIGN.md (``case_id``,
``outcome``, ``amount``, ``score``, ``reasons``, optionally ``error``).

:class:`Engine` is that promise as a :class:`typing.Protocol`. Anything with a
``name``, a ``version`` and a ``decide(cases)`` method is an engine; the
adapters in :mod:`audit.engine` make the common kinds fit, and
:func:`audit.engine.run_engine` holds every one of them to the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Engine"]


@runtime_checkable
class Engine(Protocol):
    """A decision engine under audit.

    Attributes
    ----------
    name : str
        A short name shown in reports and error messages.
    version : str
        The engine's version (a release, a rule-set version or a hash).

    Notes
    -----
    The runner also reads these attributes when an engine has them:

    ``definition_hash`` : str
        SHA-256 of what defines the engine (the rule file, the model file,
        the source code), recorded in the manifest so that a run can be
        tied to the exact engine that made its decisions.
    ``required_columns`` : tuple of str
        Columns the engine needs beyond the spec's features, e.g. the
        recorded engine's outcome column. The runner adds them to the input.
    ``sees`` : tuple of str or None
        The columns the engine reads, when it can tell (the names its rules
        use, the model's ``feature_names_in_``). None means "whatever it is
        given". Reports list them; :func:`audit.testing.check_engine` shows
        them next to the withheld sensitive columns.
    ``batches_itself`` : bool
        True when ``decide`` splits its input into requests of its own (the
        http adapter). :func:`audit.engine.run_engine` then hands it all
        cases in one call instead of cutting them into ``batch_size`` pieces.
    """

    name: str
    version: str

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Decide every case.

        Parameters
        ----------
        cases : pandas.DataFrame
            One row per case, with a unique string ``case_id`` and the
            columns the engine may see.

        Returns
        -------
        pandas.DataFrame
            The decision frame: one row per case given, the same
            ``case_id`` values, ``outcome`` (one of the audit's labels),
            ``amount`` (SEK/month, NaN where not decided), optional
            ``score``, ``reasons`` (``;``-joined codes) and ``error`` (a
            non-empty string where the engine could not decide a case), plus
            any extra columns.
        """
        ...  # pragma: no cover


def short_repr(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
