"""The case frame's schema applied to data as read: one coercion for every reader.

A file does not carry the case frame's types. A CSV has only text, so a
reader guesses: a column of whole-number decimals (``1200.0``) comes back as
integers, ``True``/``False`` as text, a municipality code as a number. Excel
and SQL sources guess differently again. If each reader kept its guess, the
same data could pass the intake suite in ``insyn check`` and fail it inside
an audit (or the other way round).

:func:`coerce_case_frame` puts every column that the assistance case frame
declares (:data:`audit._columns.ASSISTANCE_COLUMNS`: ``str``, ``int``,
``float``, ``bool``) into its declared type *before any check runs*, in
``insyn check`` and in every population loader alike. A column whose values
cannot all be converted (a word in a number column, a half child) is left as
read, so that the expectation suites report the offending rows rather than a
reader hiding them; a note says so.

:func:`coded_strings` builds a ``str`` column from integer codes and their
labels in Arrow, the way the generator and the engines make their text
columns without a Python string per row; :func:`text_values` hands a
column's text on to a new frame the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit._arrays import known_codes
from audit._columns import ASSISTANCE_COLUMNS

__all__ = ["coded_strings", "coerce_case_frame", "text_values"]

def coded_strings(codes: np.ndarray, labels: list[str | None] | tuple[str | None, ...]
                  ) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` array holding ``labels[code]`` for each code, built in Arrow.

    Parameters
    ----------
    codes : numpy.ndarray of int
        One code per row, each in ``range(len(labels))``.
    labels : sequence of str or None
        The text of each code (None: a missing value).
    """
    import pyarrow as pa

    array = pd.array(pa.array(list(labels), type=pa.string()).take(pa.array(codes)), dtype="str")
    known_codes(array, codes, labels)  # the groups are known by code: nobody need number the texts again
    return array


def text_values(values: pd.Series) -> Any:
    """A column's values for a new frame or index, without a Python string per value where that can be.

    A ``str`` column gives its own array; anything else ``to_numpy()``, whose type pandas infers.
    """
    return values.array if isinstance(values.dtype, pd.StringDtype) else values.to_numpy()


_TRUE = frozenset({"true", "1", "1.0", "yes", "ja", "t", "y", "j"})
_FALSE = frozenset({"false", "0", "0.0", "no", "nej", "f", "n"})


def _as_float(s: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(s):
        return None
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    text = s.astype("str").str.strip().where(s.notna())
    num = pd.to_numeric(text, errors="coerce")
    if (num.isna() & s.notna()).any():
        return None
    return num.astype("float64")


def _coerce(s: pd.Series, kind: str) -> pd.Series | None:
    """The column in its declared kind, or None when some value does not convert."""
    if kind == "float":
        return _as_float(s)
    if kind == "int":
        if pd.api.types.is_integer_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            return s.astype("int64") if not s.isna().any() else None
        num = _as_float(s)
        if num is None or num.isna().any():
            return None
        arr = num.to_numpy()
        if not np.all(arr == np.round(arr)):
            return None
        return pd.Series(arr.astype("int64"), index=s.index, name=s.name)
    if kind == "bool":
        if pd.api.types.is_bool_dtype(s) and not s.isna().any():
            return s.astype("bool")
        if s.isna().any():
            return None
        text = s.astype("str").str.strip().str.lower()
        if not text.isin(_TRUE | _FALSE).all():
            return None
        return text.isin(_TRUE).astype("bool")
    if kind == "str":
        if pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s):
            return None  # already text
        if pd.api.types.is_float_dtype(s):
            arr = s.to_numpy()
            if np.all(np.isnan(arr) | (arr == np.round(arr))):  # codes read as numbers: 180.0 -> "180"
                return s.map(lambda v: v if v != v else str(int(v))).astype("str").where(s.notna())
        return s.astype("str").where(s.notna())
    return None


def coerce_case_frame(
    frame: pd.DataFrame, *, source: str, kinds: Mapping[str, str] = ASSISTANCE_COLUMNS
) -> tuple[pd.DataFrame, list[str]]:
    """Put the case-frame columns of a frame as read into their declared types.

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame as a reader returned it (CSV, Excel, Parquet, SQL).
    source : str
        The file or URL, named in the notes.
    kinds : mapping of str to str
        Column -> ``"str"``, ``"int"``, ``"float"`` or ``"bool"``; default the
        assistance case frame. Columns not named are left as they are.

    Returns
    -------
    (frame, notes)
        The frame with every convertible declared column in its type, and
        one note per column that could not be converted (left as read so
        that the checks name its bad values).
    """
    out = frame
    notes: list[str] = []
    for col, kind in kinds.items():
        if col not in frame.columns or col == "case_id":
            continue
        s = frame[col]
        converted = _coerce(s, kind)
        if converted is None:
            if not _already(s, kind):
                notes.append(f"{source}: column {col!r} was left as read ({s.dtype}): not every value is a "
                             f"{kind}, so the checks report the rows that are not.")
            continue
        if converted.dtype == s.dtype and converted.equals(s):
            continue
        if out is frame:
            out = frame.copy()
        out[col] = converted.to_numpy() if kind != "str" else converted
    return out, notes


def _already(s: pd.Series, kind: str) -> bool:
    return {"float": pd.api.types.is_float_dtype, "int": pd.api.types.is_integer_dtype,
            "bool": pd.api.types.is_bool_dtype, "str": pd.api.types.is_string_dtype}[kind](s)
