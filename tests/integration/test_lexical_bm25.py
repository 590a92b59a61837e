"""BM25 on numpy arrays over real text: bm25s's scores, ``extend`` equal to a build from scratch, and an
arrays round trip that refuses inconsistent arrays."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers.data import SEED_FILE, SQUAD_FILE, seed_questions

from qa.index.lexical import MAX_SEGMENTS, LexicalIndex, idf
from qa.index.terms import tokenize

# Words no corpus below contains, in sentences that also share words with it.
NEW_TEXTS = [
    "Zorblax quintessentially outvoted the Normans in Qwertyville.",
    "The Qwertyville council met on Monday; zorblax abstained.",
    "Flibbertigibbet markets rallied after the ceasefire vote.",
]
QUESTIONS_EXTRA = ["Who outvoted the Normans in Qwertyville?", "zorblax zorblax council", "What is a flibbertigibbet?"]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


@pytest.fixture(scope="module")
def squad() -> tuple[list[str], list[str]]:
    """Real text: sentences of the SQuAD dev contexts (plus an empty and a stop-word-only one) and questions."""
    data = json.loads(SQUAD_FILE.read_text(encoding="utf-8"))
    texts: list[str] = []
    questions: list[str] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            texts += _sentences(para["context"])
            questions += [q["question"] for q in para["qas"]]
    texts = texts[:900]
    texts[10:10] = ["", "the of and it"]  # no tokens: still sentences, in N and in the mean length
    return texts, questions[::15] + QUESTIONS_EXTRA


@pytest.fixture(scope="module")
def seed() -> tuple[list[str], list[str]]:
    questions = [q.text for q in seed_questions()]
    return _sentences(SEED_FILE.read_text(encoding="utf-8")), questions + QUESTIONS_EXTRA


def _corpus(request: pytest.FixtureRequest, name: str) -> tuple[list[str], list[str]]:
    corpus: tuple[list[str], list[str]] = request.getfixturevalue(name)
    return corpus


@pytest.mark.parametrize("name", ["squad", "seed"])
def test_scores_equal_bm25s(request: pytest.FixtureRequest, name: str) -> None:
    import bm25s

    texts, questions = _corpus(request, name)
    ours = LexicalIndex(texts)
    ref = bm25s.BM25()  # the implementation this index replaces, with its defaults
    ref.index(tokenize(texts), show_progress=False)
    ref_df = np.diff(ref.scores["indptr"])
    for q in questions:
        terms = list(dict.fromkeys(tokenize([q], question=True)[0]))
        ids = [ref.vocab_dict[t] for t in terms if t in ref.vocab_dict]
        expected = ref.get_scores_from_ids(ids) if ids else np.zeros(len(texts), dtype=np.float32)
        np.testing.assert_allclose(ours.scores(q), expected, rtol=1e-5, atol=1e-5, err_msg=q)
        plain = [ref.vocab_dict[t] for t in tokenize([q])[0] if t in ref.vocab_dict]  # repeats count twice
        expected = ref.get_scores_from_ids(plain) if plain else np.zeros(len(texts), dtype=np.float32)
        np.testing.assert_allclose(ours.plain_scores(q), expected, rtol=1e-5, atol=1e-5, err_msg=q)
        lq = ours.query(q)
        np.testing.assert_allclose(lq.term_idf, idf(ref_df[ids], len(texts)), rtol=1e-12)
        for t in terms:
            want = idf(ref_df[ref.vocab_dict[t]], len(texts)) if t in ref.vocab_dict else ours.unknown_idf()
            assert ours.term_idf(t) == pytest.approx(float(want), rel=1e-12)


def test_queries_with_many_postings_score_like_bm25s() -> None:
    """Past 2**15 postings a query is weighed slice by slice in place: the same scores as bm25s still."""
    import bm25s

    rng = np.random.default_rng(0)
    words = ["market", "bank", "rates", "bonds", "gold", "vote", "council", "river", "train", "city"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) for _ in range(40_000)]
    ours = LexicalIndex(texts)
    ref = bm25s.BM25()
    ref.index(tokenize(texts), show_progress=False)
    for q in ("market bank rates", "gold river train city council", "bonds gold"):
        ids = [ref.vocab_dict[t] for t in dict.fromkeys(tokenize([q], question=True)[0])]
        assert sum(int((ours.scores(t) > 0).sum()) for t in q.split()) > 1 << 15
        np.testing.assert_allclose(ours.scores(q), ref.get_scores_from_ids(ids), rtol=1e-5, atol=1e-5)


def _assert_same(got: LexicalIndex, want: LexicalIndex, questions: list[str], stems: list[str]) -> None:
    """Indistinguishable through the public methods, to the last bit."""
    assert len(got) == len(want)
    assert got.unknown_idf() == want.unknown_idf()
    assert [got.term_idf(s) for s in stems] == [want.term_idf(s) for s in stems]
    rows = np.arange(len(want), dtype=np.int64)
    for q in questions:
        a, b = got.query(q), want.query(q)
        assert a.term_ids.tolist() == b.term_ids.tolist() and a.term_idf.tolist() == b.term_idf.tolist(), q
        assert (a.mass, a.known_mass) == (b.mass, b.known_mass), q
        np.testing.assert_array_equal(got.scores(q), want.scores(q), err_msg=q)
        np.testing.assert_array_equal(got.scores(b), want.scores(b), err_msg=q)
        np.testing.assert_array_equal(got.plain_scores(q), want.plain_scores(q), err_msg=q)
        np.testing.assert_array_equal(got.term_presence(a, rows), want.term_presence(b, rows), err_msg=q)


def _stems(texts: list[str]) -> list[str]:
    return [*sorted({t for doc in tokenize(texts) for t in doc}), "neverseenword"]


# (case, starting sentences (slice of the SQuAD ones), batches added one extend at a time)
EXTEND_CASES: list[tuple[str, slice, list[list[str]]]] = [
    ("new words", slice(0, 400), [NEW_TEXTS]),
    ("known words only", slice(0, 400), [["The Normans gave their name to Normandy.", "Rollo was a Viking."]]),
    ("empty and whitespace texts", slice(0, 400), [["", "   ", "\n\t"], NEW_TEXTS, ["", "the of and"]]),
    ("from an empty index", slice(0, 0), [["", " "], NEW_TEXTS, ["Rollo was a Viking."]]),
    ("several segments", slice(0, 300), [NEW_TEXTS] * 3),
    ("past the merge threshold", slice(0, 200), [["Rollo was a Viking.", ""], NEW_TEXTS] * (MAX_SEGMENTS + 3)),
    ("nothing added", slice(0, 50), [[]]),
]


@pytest.mark.parametrize(("case", "start", "batches"), EXTEND_CASES, ids=[c[0] for c in EXTEND_CASES])
def test_extend_equals_a_build_from_scratch(
    squad: tuple[list[str], list[str]], case: str, start: slice, batches: list[list[str]]
) -> None:
    texts, questions = squad
    all_texts = list(texts[start])
    index = LexicalIndex(all_texts)
    for batch in batches:
        index = index.extend(batch)
        all_texts += batch
        assert index.segments <= MAX_SEGMENTS
    _assert_same(index, LexicalIndex(all_texts), questions, _stems(all_texts))


def test_extend_needs_only_the_new_texts(squad: tuple[list[str], list[str]]) -> None:
    """An index loaded from its arrays holds no texts at all, yet grows exactly like a build from scratch:
    extending never tokenises the old sentences again."""
    texts, questions = squad
    loaded = LexicalIndex.from_arrays(LexicalIndex(texts[:300]).to_arrays())
    grown = loaded.extend(NEW_TEXTS)
    assert grown.segments == 2
    _assert_same(grown, LexicalIndex([*texts[:300], *NEW_TEXTS]), questions, _stems([*texts[:300], *NEW_TEXTS]))


def test_extend_leaves_the_old_index_unchanged(squad: tuple[list[str], list[str]]) -> None:
    texts, questions = squad
    old = LexicalIndex(texts[:300])
    before = {q: (old.scores(q), old.query(q)) for q in questions}
    arrays = old.to_arrays()
    new = old.extend(NEW_TEXTS)
    assert len(old) == 300 and len(new) == 300 + len(NEW_TEXTS)
    for q, (scores, lq) in before.items():
        np.testing.assert_array_equal(old.scores(q), scores)
        assert old.query(q).term_ids.tolist() == lq.term_ids.tolist() and old.query(q).mass == lq.mass
        # ids are stable: the old index's query means the same on the new index
        np.testing.assert_array_equal(new.scores(lq)[:300].astype(bool), scores.astype(bool))
    assert old.term_idf("zorblax") == old.unknown_idf() and new.term_idf("zorblax") < new.unknown_idf()
    after = old.to_arrays()
    assert all(np.array_equal(arrays[k], after[k]) for k in arrays)
    _assert_same(old, LexicalIndex(texts[:300]), questions, _stems([*texts[:300], *NEW_TEXTS]))


def _indexes(texts: list[str]) -> dict[str, LexicalIndex]:
    several = LexicalIndex(texts[:100])
    for i in range(100, 400, 30):
        several = several.extend(texts[i : i + 30])
    return {
        "empty": LexicalIndex([]),
        "no tokens": LexicalIndex(["", "the of"]),
        "one segment": LexicalIndex(texts[:400]),
        "several segments": several.extend(NEW_TEXTS),
    }


@pytest.mark.parametrize("which", ["empty", "no tokens", "one segment", "several segments"])
def test_arrays_round_trip(tmp_path: Path, squad: tuple[list[str], list[str]], which: str) -> None:
    texts, questions = squad
    index = _indexes(texts)[which]
    arrays = index.to_arrays()
    for name, a in arrays.items():  # what the store will do: one .npy per array, no pickle
        np.save(tmp_path / f"{name}.npy", a, allow_pickle=False)
    loaded = {name: np.load(tmp_path / f"{name}.npy", allow_pickle=False) for name in arrays}
    back = LexicalIndex.from_arrays(loaded)
    assert back.segments == index.segments
    stems = _stems([*texts[:400], *NEW_TEXTS])
    _assert_same(back, index, questions, stems)
    assert all(np.array_equal(a, back.to_arrays()[k]) for k, a in arrays.items())
    # and a loaded index grows like any other
    _assert_same(back.extend(["Rollo was a Viking.", ""]), index.extend(["Rollo was a Viking.", ""]), questions, stems)


def _replace(name: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
    def corrupt(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = value(arrays[name].copy())

    return corrupt


def _set(name: str, i: int, v: int) -> Callable[[dict[str, np.ndarray]], None]:
    def at(a: np.ndarray) -> np.ndarray:
        a[i] = v
        return a

    return _replace(name, at)


def _swap_rows_in_a_term(arrays: dict[str, np.ndarray]) -> None:
    start = np.concatenate(([0], np.cumsum(arrays["term_postings"])))
    t = int(np.flatnonzero(arrays["term_postings"] >= 2)[0])
    rows = arrays["rows"].copy()
    rows[start[t]], rows[start[t] + 1] = rows[start[t] + 1], rows[start[t]]
    arrays["rows"] = rows


def _repeat_a_term(arrays: dict[str, np.ndarray]) -> None:
    off = arrays["vocab_offsets"]
    lens = np.diff(off)
    i, j = next((i, j) for i in range(len(lens)) for j in range(i + 1, len(lens)) if lens[i] == lens[j])
    blob = arrays["vocab_utf8"].copy()
    blob[off[j] : off[j + 1]] = blob[off[i] : off[i + 1]]
    arrays["vocab_utf8"] = blob


def _extra_term(arrays: dict[str, np.ndarray]) -> None:
    arrays["vocab_utf8"] = np.concatenate([arrays["vocab_utf8"], np.frombuffer(b"orphan", dtype=np.uint8)])
    arrays["vocab_offsets"] = np.append(arrays["vocab_offsets"], arrays["vocab_offsets"][-1] + 6)


def _drop(name: str) -> Callable[[dict[str, np.ndarray]], None]:
    def corrupt(arrays: dict[str, np.ndarray]) -> None:
        del arrays[name]

    return corrupt


CORRUPTIONS: list[tuple[str, Callable[[dict[str, np.ndarray]], None]]] = [
    ("missing array", _drop("rows")),
    ("other format", _replace("format", lambda a: a + 1)),
    ("float rows", _replace("rows", lambda a: a.astype(np.float64))),
    ("2-d tf", _replace("tf", lambda a: a.reshape(1, -1))),
    ("a sentence length short", _replace("lengths", lambda a: a[:-1])),
    ("a length that is not the sum of its tf", _set("lengths", 0, 999)),
    ("zero tf", _set("tf", 0, 0)),
    ("a row past the end", _set("rows", -1, 10**6)),
    ("a term id past the vocabulary", _set("terms", -1, 10**6)),
    ("terms out of order", _replace("terms", lambda a: a[::-1].copy())),
    ("rows out of order within a term", _swap_rows_in_a_term),
    ("postings that do not add up", _set("term_postings", 0, 10**6)),
    ("segment sizes that do not add up", _replace("segment_sizes", lambda a: a + 1)),
    ("segment term counts that do not add up", _replace("segment_terms", lambda a: a + 1)),
    ("vocabulary offsets past the bytes", _replace("vocab_offsets", lambda a: a + 1)),
    ("vocabulary not UTF-8", _set("vocab_utf8", 0, 0xFF)),
    ("a repeated term", _repeat_a_term),
    ("a term without postings", _extra_term),
]


@pytest.mark.parametrize(("case", "corrupt"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_inconsistent_arrays_are_refused(
    squad: tuple[list[str], list[str]], case: str, corrupt: Callable[[dict[str, np.ndarray]], None]
) -> None:
    texts, _ = squad
    arrays = _indexes(texts)["several segments"].to_arrays()
    corrupt(arrays)
    with pytest.raises(ValueError, match="lexical index arrays"):
        LexicalIndex.from_arrays(arrays)
