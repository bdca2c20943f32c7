"""audit._ids against pandas: membership, positions and reindexing by case id, with and without a shared order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit._ids import RepeatCounter, ids_in, positions, reindex_by_id, repeated_count

RNG = np.random.default_rng(7)
IDS = pd.Series([f"c{i:05d}" for i in range(3000)], dtype="str")


@pytest.mark.parametrize("order", ["same", "shuffled", "subset", "with_unknown"])
def test_reindex_by_id_equals_pandas_reindex(order: str) -> None:
    frame = pd.DataFrame({"case_id": IDS, "x": RNG.normal(size=len(IDS)), "k": RNG.integers(0, 9, len(IDS)),
                          "s": pd.Series(RNG.choice(["grant", "deny", None], len(IDS)), dtype="str"),
                          "b": RNG.random(len(IDS)) < 0.5})
    ids = {"same": IDS, "shuffled": IDS.sample(frac=1, random_state=1), "subset": IDS.iloc[::3],
           "with_unknown": pd.concat([IDS.iloc[:50], pd.Series(["nope", "c99999"], dtype="str")])}[order]
    expected = frame.set_index("case_id").reindex(ids)
    pd.testing.assert_frame_equal(reindex_by_id(frame, "case_id", ids), expected, check_names=False)


def test_reindex_by_id_refuses_repeated_ids_out_of_order() -> None:
    frame = pd.DataFrame({"case_id": ["a", "b", "a"], "x": [1, 2, 3]})
    with pytest.raises(ValueError, match="repeats an id"):
        reindex_by_id(frame, "case_id", ["b", "a"])


def test_positions_and_membership_equal_a_dictionary_lookup() -> None:
    among = IDS.sample(frac=0.7, random_state=3).reset_index(drop=True)
    looked = pd.concat([IDS, pd.Series([None, "x"], dtype="str")], ignore_index=True)
    where = {v: i for i, v in enumerate(among)}
    expected = np.array([where.get(v, -1) if isinstance(v, str) else -1 for v in looked])
    np.testing.assert_array_equal(positions(looked, among), expected)
    np.testing.assert_array_equal(ids_in(looked, among), expected >= 0)
    np.testing.assert_array_equal(positions(IDS, IDS.copy()), np.arange(len(IDS)))  # the shared-order shortcut
    np.testing.assert_array_equal(ids_in([1, 2, "3"], pd.Index(["3", "1"])), [True, False, True])  # compared as text


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "float64"])
def test_distinct_equals_numpy_unique(dtype: str) -> None:
    from audit._ids import distinct

    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 7, 1000):
        for high in (3, 2**31 - 1):
            values = rng.integers(0, high, n).astype(dtype)
            got = distinct(values)
            assert got.dtype == values.dtype
            np.testing.assert_array_equal(got, np.unique(values))
    hashes = rng.integers(0, 2**63, 10_000, dtype=np.int64).astype(np.uint64)
    hashes[::97] = hashes[0]  # a hash seen many times
    np.testing.assert_array_equal(distinct(hashes), np.unique(hashes))
    np.testing.assert_array_equal(distinct(np.array([[3, 1], [1, 2]])), [1, 2, 3])  # any shape, as numpy
    np.testing.assert_array_equal(distinct(np.array([1.0, np.nan, 2.0, np.nan])), [1.0, 2.0, np.nan])  # one NaN


def test_membership_when_no_case_left_equals_a_set_lookup() -> None:
    """The shared-order shortcut of ids_in (every id allowed, in order) agrees with a set lookup."""
    np.testing.assert_array_equal(ids_in(IDS, IDS.copy()), np.ones(len(IDS), dtype=bool))
    with_missing = pd.Series(["a", None, "b"], dtype="str")
    np.testing.assert_array_equal(ids_in(with_missing, with_missing.copy()), [True, False, True])  # never found
    same_length_other_order = IDS.iloc[::-1].reset_index(drop=True)
    np.testing.assert_array_equal(ids_in(IDS, same_length_other_order), np.ones(len(IDS), dtype=bool))
    np.testing.assert_array_equal(ids_in(IDS, IDS.iloc[1:].tolist() + ["zz"]), np.arange(len(IDS)) > 0)


@pytest.mark.parametrize("order", ["same", "shuffled", "subset", "with_unknown"])
def test_reindex_by_id_first_equals_drop_duplicates_then_reindex(order: str) -> None:
    frame = pd.DataFrame({"case_id": pd.concat([IDS, IDS.iloc[:40]], ignore_index=True),  # 40 ids twice
                          "x": RNG.normal(size=len(IDS) + 40)})
    ids = {"same": IDS, "shuffled": IDS.sample(frac=1, random_state=2), "subset": IDS.iloc[::5],
           "with_unknown": pd.concat([IDS.iloc[:50], pd.Series(["nope"], dtype="str")])}[order]
    expected = frame.drop_duplicates("case_id").set_index("case_id").reindex(ids)
    pd.testing.assert_frame_equal(reindex_by_id(frame, "case_id", ids, first=True), expected, check_names=False)
    if order != "same":
        with pytest.raises(ValueError, match="repeats an id"):
            reindex_by_id(frame, "case_id", ids)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32"])
def test_repeated_count_equals_the_counts_of_numpy_unique(dtype: str) -> None:
    from audit._ids import repeated_count

    rng = np.random.default_rng(11)
    for n in (0, 1, 2, 3, 8, 1000):
        for high in (1, 2, 5, 2**31 - 1):
            values = rng.integers(0, high, n).astype(dtype)
            _, counts = np.unique(values, return_counts=True)
            assert repeated_count(values) == int(counts[counts > 1].sum()), (n, high)
    assert repeated_count(np.array([4, 1, 4, 2, 1, 4, 3])) == 5  # 4 three times, 1 twice: by hand
    with pytest.raises(TypeError, match=r"counts integers .*Got an array of float64"):
        repeated_count(np.array([1.0, 1.0]))


def test_a_repeat_counter_counts_equal_arrays_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import audit._ids as ids

    calls: list[int] = []
    real = ids.repeated_count
    monkeypatch.setattr(ids, "repeated_count", lambda v: calls.append(len(v)) or real(v))
    counter = ids.RepeatCounter()
    a = np.array([7, 3, 7, 9], dtype=np.uint64)
    assert counter(a) == 2 and counter(a.copy()) == 2 and len(calls) == 1  # equal content: not sorted again
    b = np.array([7, 3, 8, 9], dtype=np.uint64)  # same shape, other values
    assert counter(b) == 0 and counter(a.astype(np.int64)) == 2 and len(calls) == 3
    assert counter(np.array([3, 3], dtype=np.uint64)) == 2 and len(calls) == 4


# --------------------------------------------------------------------------
# HashPool: whole-run uniqueness from files, by bucket


def _planted(rng: np.random.Generator, chunks: int, size: int) -> list[np.ndarray]:
    """Random 64-bit hashes with repeats planted within and across chunks."""
    arrays = [rng.integers(0, np.iinfo(np.uint64).max, size, dtype=np.uint64, endpoint=True) for _ in range(chunks)]
    arrays[chunks - 1][:7] = arrays[0][:7]  # across chunks
    arrays[1][3] = arrays[1][4]  # within a chunk
    arrays[1][5:8] = arrays[1][8]  # a value four times
    return arrays


@pytest.mark.parametrize("buckets", [1, 2, 64, 4096])
def test_hash_pool_counts_what_repeated_count_counts_on_the_whole_array(buckets: int) -> None:
    from audit._ids import HashPool, HashRef

    rng = np.random.default_rng(buckets)
    a = _planted(rng, 5, 3_000)
    b = [x.copy() for x in a]
    b[3] = b[3].copy()
    b[3][0] = a[2][0]  # b equals a in chunks 0-2, then differs: stored once until then
    c = [x[:1_000] for x in a]  # other lengths
    with HashPool(buckets=buckets) as pool:
        refs: dict[str, list] = {}
        for i in range(5):
            for name, ref in pool.add_chunk(i, {"a": a[i], "b": b[i], "c": c[i]}).items():
                refs.setdefault(name, []).append(ref)
        for name, arrays in (("a", a), ("b", b), ("c", c)):
            whole = np.concatenate(arrays)
            values, counts = np.unique(whole, return_counts=True)
            assert HashRef.count(refs[name]) == repeated_count(whole) == int(counts[counts > 1].sum()), name
            np.testing.assert_array_equal(pool.repeated(name), values[counts > 1])
            assert RepeatCounter()(refs[name]) == repeated_count(whole)
        assert repeated_count(np.concatenate(a)) == 7 * 2 + 2 + 4
        assert repeated_count(np.concatenate(b)) == repeated_count(np.concatenate(a)) + 2


def test_hash_pool_stores_equal_streams_once_and_sorts_them_once(monkeypatch) -> None:
    from audit._ids import HashPool, HashRef

    rng = np.random.default_rng(3)
    a = _planted(rng, 4, 2_000)
    with HashPool() as pool:
        refs: dict[str, list] = {}
        for i in range(4):
            for name, ref in pool.add_chunk(i, {"run": a[i], "intake#3": a[i].copy(), "decision#1": a[i]}).items():
                refs.setdefault(name, []).append(ref)
        stored = sum(p.stat().st_size for p in pool.folder.iterdir())
        assert stored == 8 * sum(len(x) for x in a)  # one stream's bytes on disk, not three
        scans: list[str] = []
        original = HashPool._scan
        monkeypatch.setattr(HashPool, "_scan", lambda self, root: (scans.append(root), original(self, root))[1])
        counts = {name: HashRef.count(r) for name, r in refs.items()}
        assert set(counts.values()) == {repeated_count(np.concatenate(a))} and scans == ["run"]
        assert not any(isinstance(v, np.ndarray) and v.size > 100 for v in vars(pool).values())  # nothing held


def test_hash_pool_writes_an_alias_out_when_a_chunk_lacks_it_or_its_twin() -> None:
    from audit._ids import HashPool, HashRef

    rng = np.random.default_rng(4)
    a = _planted(rng, 3, 500)
    with HashPool(buckets=8) as pool:
        r0 = pool.add_chunk(0, {"a": a[0], "b": a[0]})
        r1 = pool.add_chunk(1, {"a": a[1]})  # b is missing from this chunk: it gets files of its own first
        r2 = pool.add_chunk(2, {"a": a[2], "b": a[2]})
        assert HashRef.count([r0["a"], r1["a"], r2["a"]]) == repeated_count(np.concatenate(a))
        assert HashRef.count([r0["b"], r2["b"]]) == repeated_count(np.concatenate([a[0], a[2]]))
        with pytest.raises(ValueError, match="every chunk of one stream"):
            HashRef.count([r0["a"], r2["a"]])
        with pytest.raises(ValueError, match="every chunk of one stream"):
            HashRef.count([r0["a"], r1["a"], r2["b"]])
        with pytest.raises(ValueError, match="chunk 1 of stream 'a' was added already"):
            pool.add_chunk(1, {"a": a[1]})
        folder = pool.folder
    assert not folder.exists()  # closed: the files are gone
    with pytest.raises(ValueError, match="buckets must be a power of two from 1 to 4096. Got 3"):
        HashPool(buckets=3)


def test_is_unique_remembers_a_text_array_and_is_never_fooled_by_a_changed_one(monkeypatch) -> None:
    """Ids found unique are not hashed again while their Arrow array lives; a changed column is asked afresh."""
    from audit import _ids

    ids = pd.Series([f"c{i}" for i in range(1000)], dtype="str")
    assert _ids.is_unique(ids)
    calls = []
    real = pd.Series.is_unique
    monkeypatch.setattr(pd.Series, "is_unique", property(lambda s: calls.append(len(s)) or real.fget(s)))
    assert _ids.is_unique(ids) and _ids.is_unique(ids.reset_index(drop=True)) and calls == []  # the same array
    changed = ids.copy()
    changed.iloc[5] = "c7"  # copy-on-write: a new array, with a duplicate
    assert not _ids.is_unique(changed) and calls == [1000]
    assert _ids.is_unique(pd.Series(range(5))) and not _ids.is_unique(pd.Series([1, 1])) and calls == [1000, 5, 2]
    python_text = pd.Series(["a", "b"], dtype=pd.StringDtype("python"))  # no Arrow array of its own: asked each time
    assert _ids.is_unique(python_text) and _ids.is_unique(python_text) and calls == [1000, 5, 2, 2, 2]
    assert not _ids.is_unique(changed) and calls == [1000, 5, 2, 2, 2]  # a duplicate found is remembered too


def test_known_unique_says_only_what_was_found_and_asks_nothing(monkeypatch) -> None:
    """``known_unique`` is True only for an array found unique before; it never hashes anything itself."""
    from audit import _ids

    ids = pd.Series([f"k{i}" for i in range(500)], dtype="str")
    calls = []
    real = pd.Series.is_unique
    monkeypatch.setattr(pd.Series, "is_unique", property(lambda s: calls.append(len(s)) or real.fget(s)))
    assert not _ids.known_unique(ids) and calls == []  # not asked yet: not known
    assert _ids.is_unique(ids) and _ids.known_unique(ids) and _ids.known_unique(ids.reset_index(drop=True))
    twice = ids.copy()
    twice.iloc[1] = "k0"
    assert not _ids.known_unique(twice)  # a changed copy is a new array
    assert not _ids.is_unique(twice) and not _ids.known_unique(twice)  # found duplicated: still not "known unique"
    assert not _ids.known_unique(pd.Series(range(3))) and calls == [500, 500]


def test_the_uniqueness_expectation_of_ids_found_unique_before_is_the_same(monkeypatch) -> None:
    """The uniqueness check's answer for ids already found unique equals the full computation's, and for
    duplicated ids (never found unique) the full computation still runs."""
    from audit import _ids
    from audit.checks._native import evaluate_native

    def run(frame: pd.DataFrame) -> dict:
        return evaluate_native(frame, "expect_column_values_to_be_unique", {"column": "case_id"}, shown=20)

    unique = pd.DataFrame({"case_id": pd.Series([f"u{i}" for i in range(3000)], dtype="str")})
    cold = run(unique.copy(deep=True))  # a fresh array: computed in full
    assert _ids.is_unique(unique["case_id"])
    warm = run(unique)
    assert warm.success is cold.success is True and warm.result == cold.result
    assert warm.result["unexpected_count"] == 0 and list(warm.positions) == list(cold.positions) == []
    dup = pd.DataFrame({"case_id": pd.Series([f"u{i % 2990}" for i in range(3000)], dtype="str")})
    assert not _ids.is_unique(dup["case_id"])
    got = run(dup)
    assert got.success is False and got.result["unexpected_count"] == 20


@pytest.mark.parametrize("kind", ["Series", "Index", "string Index", "object Index", "list"])
def test_ids_given_as_an_index_or_a_list_are_looked_up_alike(kind: str) -> None:
    """``ids_in`` and ``positions`` answer the same for ids given as a str Series, an Index (Arrow text taken as it
    is), an object Index or a list, against pandas' own ``isin`` and ``get_indexer``."""
    from audit._ids import ids_in, positions

    rng = np.random.default_rng(2)
    pool = [f"c{i:05d}" for i in range(6000)]
    ids = [pool[i] for i in rng.permutation(6000)[:5000]]
    allowed = [pool[i] for i in rng.permutation(6000)[:4000]]
    make = {"Series": lambda v: pd.Series(v, dtype="str"), "Index": lambda v: pd.Index(v, dtype="str"),
            "string Index": lambda v: pd.Index(v, dtype="string"), "object Index": lambda v: pd.Index(v, dtype=object),
            "list": list}[kind]
    expected_in = pd.Index(ids).isin(allowed)
    expected_at = pd.Index(allowed).get_indexer(ids)
    assert ids_in(make(ids), make(allowed)).tolist() == expected_in.tolist()
    assert positions(make(ids), make(allowed)).tolist() == expected_at.tolist()
