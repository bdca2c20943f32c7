"""Column arrays: results kept per Arrow array (audit._arrays), checked against pandas itself."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from audit import _arrays
from audit._arrays import codes_of, remembered


def _texts(seed: int, n: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    pool = ["", "a", "B", "b", "å", "Ä", "z", "10", "9", "man", "kvinna", "ålder", "\u2028", "a b", None]
    return [pool[i] for i in rng.integers(0, len(pool), n)]


@pytest.mark.parametrize("dtype", ["str", "string", pd.StringDtype("python"), "object", "category"])
def test_codes_of_equals_pandas_factorize(dtype) -> None:
    """Codes in order of appearance, -1 for a missing value, as ``pandas.factorize`` gives them, for every kind of text column."""
    values = pd.Series(_texts(1, 5000), dtype=dtype)
    codes, uniques = codes_of(values)
    expected_codes, expected_uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    assert codes.dtype == np.int64 and codes.tolist() == np.asarray(expected_codes).tolist()
    assert list(uniques) == list(np.asarray(expected_uniques, dtype=object))
    for number in (pd.Series([3.5, np.nan, 1.0, 3.5]), pd.Series([7, 7, 2]), pd.Series([True, False, True])):
        got, distinct = codes_of(number)
        want, want_distinct = pd.factorize(number, sort=False, use_na_sentinel=True)
        assert got.tolist() == want.tolist() and list(distinct) == list(want_distinct)


def test_codes_are_worked_out_once_per_array_and_never_for_a_changed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same Arrow array is numbered once; a copy changed under copy-on-write is a new array, numbered afresh."""
    calls: list[int] = []
    real = pd.factorize
    monkeypatch.setattr(pd, "factorize", lambda v, *a, **k: calls.append(len(v)) or real(v, *a, **k))
    values = pd.Series(["x", "y", None, "x"] * 2000, dtype="str")
    codes, uniques = codes_of(values)
    assert calls == [8000]
    codes[:] = 99  # a caller's codes are its own
    again, same = codes_of(pd.DataFrame({"g": values})["g"])  # the same array through a frame
    assert calls == [8000] and again.tolist() == [0, 1, -1, 0] * 2000 and same is uniques
    with pytest.raises(ValueError, match="read-only"):
        uniques[0] = "z"
    changed = values.copy()
    changed.iloc[2] = "z"
    assert codes_of(changed)[0][:4].tolist() == [0, 1, 2, 0] and calls == [8000, 8000]
    python_text = pd.Series(["p", "q"], dtype=pd.StringDtype("python"))  # no Arrow array of its own
    codes_of(python_text)
    codes_of(python_text)
    assert calls == [8000, 8000, 2, 2]


def test_an_entry_leaves_with_its_array() -> None:
    """What is remembered of an array goes when the array does, whatever kinds were computed."""
    values = pd.Series([f"c{i}" for i in range(100)], dtype="str")
    key = id(values.array.__arrow_array__())
    assert remembered(values, "length", len) == 100
    codes_of(values)
    assert key in _arrays._KEPT and set(_arrays._KEPT[key][1]) == {"length", "codes"}
    del values
    gc.collect()
    assert key not in _arrays._KEPT


@pytest.mark.parametrize("seed", range(3))
def test_sorted_codes_of_the_checks_equal_pandas_sorted_factorize(seed: int) -> None:
    """The checks' sorted group codes (derived from :func:`codes_of`) equal ``pandas.factorize(sort=True)``."""
    from audit.checks._statistics import factorized

    values = pd.Series(_texts(seed, 3000), dtype="str")
    codes, uniques = factorized(values)
    want, want_uniques = pd.factorize(values, sort=True)
    assert codes.tolist() == want.tolist() and list(uniques) == list(want_uniques)
    empty_codes, empty_uniques = factorized(pd.Series([None, None], dtype="str"))
    assert empty_codes.tolist() == [-1, -1] and len(empty_uniques) == 0


@pytest.mark.parametrize("values", [
    pd.Series(["b", None, "a", "", "b", " "], dtype="str"), pd.Series([1.0, np.nan, 2.0]), pd.Series([3, 1, 3]),
    pd.Series(["x", None], dtype="category"), pd.Series([1, None, 2], dtype="Int64"),
], ids=["str", "float", "int", "category", "Int64"])
def test_funnel_group_codes_equal_labelling_every_case(values: pd.Series) -> None:
    """The funnel's group codes (from :func:`codes_of`) equal labelling each case and numbering the labels sorted."""
    from audit.metrics._funnel import _codes
    from audit.metrics._groups import group_labels

    frame = pd.DataFrame({"g": values})
    per_case = group_labels(frame, ["g"])["g"].to_numpy(dtype=object)
    want, names = pd.factorize(per_case, sort=True)
    codes, labels = _codes(frame, "g")
    assert codes.tolist() == want.tolist() and labels == [str(n) for n in names]


def test_a_missing_value_can_have_a_code_of_its_own() -> None:
    """``missing_code=True``: the missing values share one code after the others, and NaN is its value."""
    values = pd.Series(["b", None, "a", None, "b"], dtype="str")
    codes, uniques = codes_of(values, missing_code=True)
    assert codes.tolist() == [0, 2, 1, 2, 0] and uniques[:2].tolist() == ["b", "a"] and pd.isna(uniques[2])
    assert codes_of(values)[0].tolist() == [0, -1, 1, -1, 0]  # the shared codes were not changed
    full = pd.Series(["x", "y"], dtype="str")
    assert codes_of(full, missing_code=True)[0].tolist() == [0, 1] and len(codes_of(full, missing_code=True)[1]) == 2


def test_codes_of_a_column_of_many_distinct_values_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids or free text (more than 65,536 distinct values) are numbered each time: keeping them would cost more."""
    calls: list[int] = []
    real = pd.factorize
    monkeypatch.setattr(pd, "factorize", lambda v, *a, **k: calls.append(len(v)) or real(v, *a, **k))
    ids = pd.Series([f"c{i}" for i in range(70_000)], dtype="str")
    first, _ = codes_of(ids)
    second, _ = codes_of(ids)
    assert calls == [70_000, 70_000] and first.tolist() == second.tolist() == list(range(70_000))
    groups = pd.Series([f"g{i % 65_536}" for i in range(70_000)], dtype="str")
    codes_of(groups)
    codes_of(groups)
    assert calls == [70_000, 70_000, 70_000]


@pytest.mark.parametrize("seed", range(4))
def test_codes_of_a_column_built_from_codes_are_known_without_numbering_its_texts(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``coded_strings`` tells its codes: they equal ``pandas.factorize`` of the texts (equal labels one value, None
    missing), and the texts are never numbered."""
    from audit._schema import coded_strings

    rng = np.random.default_rng(seed)
    labels = [None, "b", "a", "b", "", "å", "z", None][: int(rng.integers(1, 9))]
    if seed == 3:  # more than 16 labels: numbered in order of appearance by pandas.unique
        labels = [f"l{i % 30}" if i % 7 else None for i in range(40)]
    codes = rng.integers(0, len(labels), int(rng.integers(0, 3000)))
    column = pd.Series(coded_strings(codes, labels))
    want, want_uniques = pd.factorize(column.astype(object), sort=False, use_na_sentinel=True)
    calls: list[int] = []
    real = pd.factorize
    monkeypatch.setattr(pd, "factorize", lambda v, *a, **k: calls.append(len(v)) or real(v, *a, **k))
    got, uniques = codes_of(column)
    assert calls == []
    assert got.tolist() == want.tolist() and list(uniques) == list(want_uniques)


@pytest.mark.parametrize("kind", ["labels", "labels with gaps", "ids", "short", "coded", "string"])
def test_text_objects_equal_pandas_to_numpy(kind: str) -> None:
    """A text column as Python strings (missing as None), as ``to_numpy(object, na_value=None)`` gives it."""
    from audit._arrays import text_objects
    from audit._schema import coded_strings

    rng = np.random.default_rng(3)
    labels = ["grant", "deny", "", "å", None]
    if kind == "coded":
        values = pd.Series(coded_strings(rng.integers(0, 5, 9000), labels))
    else:
        raw = {"labels": [labels[i] or "x" for i in rng.integers(0, 4, 9000)],
               "labels with gaps": [labels[i] for i in rng.integers(0, 5, 9000)],
               "ids": [f"c{i}" if i % 11 else None for i in range(9000)],
               "short": ["a", None, "b"], "string": [labels[i] for i in rng.integers(0, 5, 9000)]}[kind]
        values = pd.Series(raw, dtype="string" if kind == "string" else "str")
    got = text_objects(values)
    want = values.to_numpy(dtype=object, na_value=None)
    assert got.dtype == object and len(got) == len(want)
    assert all((a is None and b is None) or (type(a) is str and a == b) for a, b in zip(got, want, strict=True))
