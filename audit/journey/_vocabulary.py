"""Who acts on the data of an assistance case, and what becomes of a case at a step.

Research on Swedish municipal RPA (Svensson & Ranerup) found that the data in
an assistance decision is created and changed along a *data journey*: the
applicant declares income and costs, registries (Försäkringskassan,
Skatteverket, Arbetsförmedlingen, CSN and others via SSBTEK) supply facts,
caseworkers make judgements (able to work, follows the plan), and software
computes, routes and decides. Insyn names these actors with a small closed
vocabulary so that every field and every step can be attributed.
"""

from __future__ import annotations

import re

from audit.exceptions import SpecError

ACTORS: tuple[str, ...] = ("applicant", "caseworker", "registry:<name>", "system")
"""The actors of a data journey.

``applicant``
    the person applying: what they declare (income, costs, household);
``caseworker``
    a social worker's judgement or decision (discretion), e.g. ``able_to_work``,
    ``follows_plan``, the resolution of a referred case or an override;
``registry:<name>``
    a public registry read by the municipality, e.g. ``registry:skatteverket``,
    ``registry:forsakringskassan``, ``registry:arbetsformedlingen``,
    ``registry:csn``; the name is lower-case letters, digits, ``_``, ``.``, ``-``;
``system``
    software: the loader, the checks, the engine under audit, Insyn itself.
"""

CASE_STATUSES: tuple[str, ...] = (
    "error",
    "flagged",
    "ok",
    "overridden",
    "quarantined",
    "referred",
    "rejected",
    "reviewed",
)
"""What became of a case at a step (column ``status`` of ``journey.parquet``).

``ok`` went on unchanged in status; ``flagged`` failed a check whose policy is
``warn`` and went on; ``quarantined`` failed a check whose policy is
``quarantine`` and was kept out of decisions; ``rejected`` was taken out by
the step for another stated reason; ``error`` the step (e.g. the engine)
could not process it; ``referred`` was routed to a caseworker; ``reviewed`` a
caseworker decided it (a referred case resolved); ``overridden`` a caseworker
replaced the engine's automatic outcome.
"""



class LineageWarning(UserWarning):
    """OpenLineage events could not be delivered; the audit itself goes on."""


_FIXED_ACTORS = frozenset({"applicant", "caseworker", "system"})
_REGISTRY = re.compile(r"registry:[a-z0-9][a-z0-9_.-]*")


def validate_actor(actor: object, *, where: str = "actor") -> str:
    """Return ``actor`` when it is one of :data:`ACTORS`, else raise.

    Parameters
    ----------
    actor : object
        The value to check.
    where : str, default "actor"
        What the value is, for the message (e.g. ``"provenance.rent"``).

    Returns
    -------
    str

    Raises
    ------
    SpecError
        Naming ``where`` and the value given. ``SpecError`` is a ``ValueError``.

    Examples
    --------
    >>> validate_actor("registry:skatteverket")
    'registry:skatteverket'
    """
    if isinstance(actor, str) and (actor in _FIXED_ACTORS or _REGISTRY.fullmatch(actor)):
        return actor
    raise SpecError(
        f"{where} must be one of applicant, caseworker, system or registry:<name> "
        f"(name in lower-case letters, digits, '_', '.', '-'). Got {actor!r}."
    )
