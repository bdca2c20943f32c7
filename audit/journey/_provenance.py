"""Who created each column of a case frame: the provenance of a data source.

The data of an assistance case is created along a data journey by the
applicant (what they declare), registries (what Försäkringskassan,
Skatteverket, Arbetsförmedlingen, CSN and others report), caseworkers (their
judgements) and software. A synthetic population declares who creates each
of its columns; a file or a database query cannot know, so its spec says it
(``population.provenance``: column -> creator). A column the spec does not
declare has the origin ``unknown``: Insyn never makes a creator up.

Creators are the actors of :data:`audit.journey.ACTORS`; a spec may also
write ``registry`` (a registry it does not name) or a known registry's name
alone (``forsakringskassan`` for ``registry:forsakringskassan``, see
:data:`REGISTRY_NAMES`); ``unknown`` says so explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audit.exceptions import SpecError
from audit.journey._vocabulary import validate_actor

__all__ = ["REGISTRY_NAMES", "UNKNOWN_ORIGIN", "column_provenance", "normalise_origin"]

UNKNOWN_ORIGIN = "unknown"
"""The origin of a column whose creator nobody declared."""

REGISTRY_NAMES: tuple[str, ...] = (
    "arbetsformedlingen", "csn", "folkbokforing", "forsakringskassan", "kronofogden", "migrationsverket",
    "pensionsmyndigheten", "skatteverket", "ssbtek",
)
"""Registries a spec may name alone (``forsakringskassan`` means ``registry:forsakringskassan``)."""


def normalise_origin(value: object, *, where: str = "provenance") -> str:
    """Return the creator ``value`` names, in the journey's words.

    ``applicant``, ``caseworker``, ``system``, ``registry``, ``unknown`` and
    ``registry:<name>`` are kept; a name of :data:`REGISTRY_NAMES` becomes
    ``registry:<name>``.

    Raises
    ------
    SpecError
        Naming ``where``, the value and what was expected.

    Examples
    --------
    >>> normalise_origin("forsakringskassan")
    'registry:forsakringskassan'
    """
    if value in (UNKNOWN_ORIGIN, "registry"):
        return str(value)
    if isinstance(value, str) and value.strip().lower() in REGISTRY_NAMES:
        return f"registry:{value.strip().lower()}"
    try:
        return validate_actor(value, where=where)
    except SpecError:
        raise SpecError(
            f"{where} must be one of the creators applicant, caseworker, system, registry, registry:<name> (name in "
            f"lower-case letters, digits, '_', '.', '-'), a registry's name ({', '.join(REGISTRY_NAMES)}) or "
            f"unknown. Got {value!r}."
        ) from None


def column_provenance(
    columns: Iterable[object], declared: Mapping[str, object], *, where: str = "population.provenance",
    derived: Iterable[str] = (), base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The creator of every column of a frame: declared, derived by Insyn (``system``), else ``unknown``.

    Parameters
    ----------
    columns : iterable
        The frame's columns.
    declared : mapping
        The spec's ``population.provenance`` (column -> creator).
    where : str
        Where the declaration is written, for messages (e.g. ``spec.yaml: population.provenance``).
    derived : iterable of str
        Columns Insyn computed (``population.derive``): their creator is ``system``.
    base : mapping, optional
        Creators known before the spec's declaration (a synthetic population's own).

    Raises
    ------
    SpecError
        When a declared creator is not one, or the declaration names a column the frame does not have.
    """
    names = [str(c) for c in columns]
    out = {c: UNKNOWN_ORIGIN for c in names}
    out.update({c: v for c, v in (base or {}).items() if c in out})
    out.update({c: "system" for c in derived if c in out})
    for col, value in declared.items():
        if str(col) not in out:
            raise SpecError(f"{where} names the column {col!r}, which is not a column of the case frame. "
                            f"Columns: {', '.join(names)}.")
        out[str(col)] = normalise_origin(value, where=f"{where}.{col}")
    return out
