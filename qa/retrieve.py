"""Stage 4: find the sentences that answer a question, and decide when none does.

Two steps. Candidates: the union of the dense (FAISS) and BM25 top lists, so neither signal's
misses are final. Scoring: a linear scorer over cheap per-candidate features (dense similarity
of the sentence, of its neighbours and of its window; BM25 normalised by the question's IDF mass,
so it means the same across questions; IDF coverage; answer-type cues such as "how many" →
a number), with weights fitted on held-out folds by ``python -m qa.eval --fit`` and shipped in
``retrieval_weights.json``. Abstention is a separate logistic model over query-level evidence
(best scores and how much of the question's IDF mass the article covers at all), so an
irrelevant top lexical match can no longer look like a perfect one.

Per query the work is O(N) numpy (BM25 scores, top-k selection) plus Python over the
candidate set only (a few hundred rows at most), so it stays fast at a million sentences.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from qa.embed import Embedder
from qa.errors import ConfigError
from qa.store import Store
from qa.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

WEIGHTS_FILE = Path(__file__).with_name("retrieval_weights.json")

#: Per-candidate features, in the column order of ``Candidates.features``.
FEATURES: tuple[str, ...] = (
    "dense",  # cosine(question, sentence)
    "dense_prev",  # cosine(question, previous sentence of the same document), 0 at the start
    "dense_next",  # cosine(question, next sentence), 0 at the end
    "window",  # cosine(question, normalised sum of the three sentence vectors)
    "bm25",  # BM25(sentence) / IDF mass of the question: comparable across questions
    "bm25_rel",  # BM25(sentence) / best BM25 among candidates: within-question contrast
    "bm25_prev",  # BM25 of the neighbours / IDF mass
    "bm25_next",
    "coverage",  # share of the question's IDF mass whose terms occur in the sentence
    "coverage_window",  # the same over the sentence and its neighbours
    "dense_rank",  # log(1 + rank by dense similarity among candidates)
    "bm25_rank",  # log(1 + rank by BM25 among candidates)
    "length",  # log of the sentence's length in characters: longer sentences hold more facts
    "type_number",  # "how many/much…" and the sentence has a number the question lacks
    "type_time",  # "when/what year…" and the sentence has a year, date or century the question lacks
    "type_person",  # "who…" and the sentence has a capitalised name the question lacks
    "type_place",  # "where…" and the sentence has a capitalised name the question lacks
)

#: Query-level evidence for abstention, computed from the candidates' features and scores.
ABSTAIN_FEATURES: tuple[str, ...] = (
    "top_score",  # best linear score
    "dense_max",  # best cosine to any candidate sentence
    "window_max",  # best cosine to any candidate window
    "coverage_max",  # best IDF coverage of any sentence
    "coverage_window_max",  # best IDF coverage of any window
    "corpus_coverage",  # share of the question's IDF mass whose terms occur anywhere in the corpus
)

Scorer = Literal["learned", "rrf"]


@dataclass(frozen=True)
class ScorerWeights:
    """The fitted linear scorer and abstention model (raw-feature weights; no scaling at query time)."""

    rank: tuple[float, ...]
    abstain: tuple[float, ...]
    abstain_bias: float
    abstain_below: float
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.rank) != len(FEATURES) or len(self.abstain) != len(ABSTAIN_FEATURES):
            raise ValueError("weights do not match the feature lists")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "rank_weights": dict(zip(FEATURES, self.rank, strict=True)),
            "abstain_weights": dict(zip(ABSTAIN_FEATURES, self.abstain, strict=True)),
            "abstain_bias": self.abstain_bias,
            "abstain_below": self.abstain_below,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ScorerWeights:
        """Read weights by feature name, so a file written for other features fails loudly."""
        rank, abstain = raw["rank_weights"], raw["abstain_weights"]
        if set(rank) != set(FEATURES) or set(abstain) != set(ABSTAIN_FEATURES):
            raise ValueError("the feature names differ from this version's")
        return cls(
            rank=tuple(float(rank[f]) for f in FEATURES),
            abstain=tuple(float(abstain[f]) for f in ABSTAIN_FEATURES),
            abstain_bias=float(raw["abstain_bias"]),
            abstain_below=float(raw["abstain_below"]),
            meta=dict(raw.get("meta", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> ScorerWeights:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Could not read the retrieval weights {path}: {exc}. Refit them with `python -m qa.eval --fit`."
            ) from exc


@lru_cache(maxsize=1)
def default_weights() -> ScorerWeights:
    """The shipped weights (fitted on all dev articles; see the file's ``meta``)."""
    return ScorerWeights.load(WEIGHTS_FILE)


@dataclass(frozen=True)
class RetrievalConfig:
    """How candidates are gathered and scored; ``weights=None`` means the shipped fitted weights."""

    candidates: int = 100
    scorer: Scorer = "learned"
    weights: ScorerWeights | None = None

    def resolved_weights(self) -> ScorerWeights:
        return self.weights if self.weights is not None else default_weights()


@dataclass(frozen=True)
class RankedHit(Hit):
    """A hit that also carries the query-level confidence that the corpus answers the question."""

    confidence: float = 1.0


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed word tokens for BM25."""
    import bm25s

    return bm25s.tokenize(  # type: ignore[no-any-return]
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def idf(df: NDArray[np.int64] | int, n: int) -> NDArray[np.float64]:
    """BM25's (Lucene) inverse document frequency; a term absent from the corpus gets the largest.

    >>> [round(float(x), 3) for x in idf(np.array([0, 1, 10]), 10)]
    [3.091, 1.992, 0.047]
    """
    d = np.asarray(df, dtype=np.float64)
    return np.asarray(np.log1p((n - d + 0.5) / (d + 0.5)), dtype=np.float64)


@dataclass(frozen=True)
class LexicalQuery:
    """A question's distinct known terms with their IDF, and the IDF mass of all its terms."""

    term_ids: NDArray[np.int64]
    term_idf: NDArray[np.float64]
    mass: float  # IDF of every distinct term, known or not
    known_mass: float  # IDF of the terms that occur somewhere in the corpus


class LexicalIndex:
    """BM25 over sentences, built in memory from the store (cheap next to embedding)."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._bm25 = bm25s.BM25()
        self._size = len(texts)
        self._idf = np.zeros(0, dtype=np.float64)
        if texts:
            self._bm25.index(tokenize(texts), show_progress=False)
            indptr = np.asarray(self._bm25.scores["indptr"], dtype=np.int64)
            self._idf = idf(np.diff(indptr), self._size)

    def __len__(self) -> int:
        return self._size

    def query(self, text: str) -> LexicalQuery:
        tokens = list(dict.fromkeys(tokenize([text])[0])) if self._size else []
        vocab: dict[str, int] = self._bm25.vocab_dict if self._size else {}
        ids = np.array([vocab[t] for t in tokens if t in vocab], dtype=np.int64)
        term_idf = self._idf[ids] if ids.size else np.zeros(0, dtype=np.float64)
        unknown = len(tokens) - len(ids)
        unknown_idf = float(idf(0, self._size)) if self._size else 0.0
        known = float(term_idf.sum())
        return LexicalQuery(ids, term_idf, known + unknown * unknown_idf, known)

    def scores(self, query: str | LexicalQuery) -> NDArray[np.float32]:
        """BM25 of every sentence: O(N) numpy, no Python loop over sentences."""
        lq = self.query(query) if isinstance(query, str) else query
        if not self._size or not lq.term_ids.size:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(lq.term_ids.tolist()), dtype=np.float32)

    def term_presence(self, lq: LexicalQuery, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """``[i, j]``: does sentence ``rows[i]`` contain term ``j``? Binary search in each term's postings."""
        out = np.zeros((len(rows), len(lq.term_ids)), dtype=np.bool_)
        if not self._size or not len(rows):
            return out
        indptr = self._bm25.scores["indptr"]
        indices = self._bm25.scores["indices"]
        for j, t in enumerate(lq.term_ids.tolist()):
            postings = indices[indptr[t] : indptr[t + 1]]
            if not len(postings):
                continue
            pos = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
            out[:, j] = postings[pos] == rows
        return out


# ----- answer-type cues -------------------------------------------------------------------

_Q_NUMBER = re.compile(
    r"\bhow (many|much|long|old|far|large|big|tall|high|often|fast|deep|wide|heavy)\b"
    r"|\bwhat (percentage|percent|proportion|number|amount|fraction|size|share)\b"
)
_Q_TIME = re.compile(
    r"\bwhen\b|\b(what|which|in what) (year|years|century|centuries|decade|date|day|month|time|period|era|age)\b"
)
_Q_PERSON = re.compile(r"\bwho\b|\bwhom\b|\bwhose\b")
_Q_PLACE = re.compile(r"\bwhere\b|\b(what|which) (country|city|state|region|place|location|continent|nation|town)\b")
_NUMBER = re.compile(
    r"\d[\d,.]*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|percent)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(1\d{3}|20\d{2})s?\b|\b\d{1,2}(st|nd|rd|th)\b|\bcentur(y|ies)\b|\b(january|february|march|april|may|june"
    r"|july|august|september|october|november|december)\b|\b(monday|tuesday|wednesday|thursday|friday|saturday"
    r"|sunday|yesterday|today|tomorrow)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]+")
_WORD = re.compile(r"[\w'’-]+")


def question_types(question: str) -> tuple[bool, bool, bool, bool]:
    """Which answer types the question asks for: (number, time, person, place).

    >>> question_types("How many people live there?"), question_types("In what year did it end?")
    ((True, False, False, False), (False, True, False, False))
    >>> question_types("Who wrote it, and where?")
    (False, False, True, True)
    """
    q = question.lower()
    return bool(_Q_NUMBER.search(q)), bool(_Q_TIME.search(q)), bool(_Q_PERSON.search(q)), bool(_Q_PLACE.search(q))


def _new(pattern: re.Pattern[str], text: str, known: set[str]) -> bool:
    return any(m.group(0).lower() not in known for m in pattern.finditer(text))


def type_cues(question: str, texts: Sequence[str]) -> NDArray[np.float32]:
    """Per sentence: (number, time, person, place) cue = the question asks for it and the sentence
    offers one that the question does not already contain (an answer is new information).

    >>> type_cues("How many vetoes were there?", ["They cast three vetoes.", "They vetoed it."]).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    >>> type_cues("Who stayed in Washington?", ["In Washington, Gallant stayed.", "Washington stayed."])[:, 2].tolist()
    [1.0, 0.0]
    """
    wants = question_types(question)
    out = np.zeros((len(texts), 4), dtype=np.float32)
    if not any(wants):
        return out
    known = {w.lower() for w in _WORD.findall(question)}
    for i, text in enumerate(texts):
        if wants[0]:
            out[i, 0] = _new(_NUMBER, text, known)
        if wants[1]:
            out[i, 1] = _new(_TIME, text, known)
        if wants[2] or wants[3]:
            has_name = _new(_CAPITALISED, text, known)
            out[i, 2] = wants[2] and has_name
            out[i, 3] = wants[3] and has_name
    return out


# ----- candidates, features and scores --------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """The candidate rows for one question, their features, and the query-level evidence."""

    rows: NDArray[np.int64]
    features: NDArray[np.float32]  # (len(rows), len(FEATURES))
    corpus_coverage: float

    def __len__(self) -> int:
        return len(self.rows)


def rank_scores(features: NDArray[np.float32], weights: ScorerWeights) -> NDArray[np.float32]:
    """The linear score of each candidate (higher is better)."""
    return np.asarray(features @ np.asarray(weights.rank, dtype=np.float32), dtype=np.float32)


def rrf_scores(features: NDArray[np.float32], k: float = 60.0) -> NDArray[np.float32]:
    """Reciprocal-rank fusion of the dense and BM25 ranks, the untrained hybrid.

    >>> [round(float(x), 4) for x in rrf_scores(np.zeros((2, len(FEATURES)), dtype=np.float32))]
    [0.0328, 0.0328]
    """
    d = np.expm1(features[:, FEATURES.index("dense_rank")])
    b = np.expm1(features[:, FEATURES.index("bm25_rank")])
    return np.asarray(1.0 / (k + 1 + d) + 1.0 / (k + 1 + b), dtype=np.float32)


def abstain_features(cand: Candidates, scores: NDArray[np.float32]) -> NDArray[np.float64]:
    """Query-level evidence, in the order of ``ABSTAIN_FEATURES``; zeros when there is no candidate."""
    if not len(cand):
        return np.zeros(len(ABSTAIN_FEATURES), dtype=np.float64)
    f = cand.features
    col = FEATURES.index
    return np.array(
        [
            float(scores.max()),
            float(f[:, col("dense")].max()),
            float(f[:, col("window")].max()),
            float(f[:, col("coverage")].max()),
            float(f[:, col("coverage_window")].max()),
            cand.corpus_coverage,
        ],
        dtype=np.float64,
    )


def confidence(evidence: NDArray[np.float64], weights: ScorerWeights) -> float:
    """Probability-like belief that the corpus answers the question (logistic over the evidence)."""
    z = float(evidence @ np.asarray(weights.abstain, dtype=np.float64)) + weights.abstain_bias
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class Retriever:
    """Ranks the store's sentences for a question, and says when none answers it."""

    def __init__(self, store: Store, embedder: Embedder, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.weights = self.config.resolved_weights()
        self.lexical = LexicalIndex([s.text for s in store.sentences])

    def candidates(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> Candidates:
        """Gather candidates from both indexes and compute their features."""
        store = self.store
        n = len(store)
        lq = self.lexical.query(query)
        corpus_cov = lq.known_mass / lq.mass if lq.mass > 0 else 0.0
        empty = Candidates(np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURES)), dtype=np.float32), corpus_cov)
        if not n:
            return empty
        q = self.embedder.encode([query])[0]
        lexical = self.lexical.scores(lq)
        n_cand = min(n, max(self.config.candidates, k))
        _, dense_ids = store.search(q[None, :], n_cand)
        parts = [dense_ids[0][dense_ids[0] >= 0].astype(np.int64)]
        if lexical.size and lexical.max() > 0:
            top = np.argpartition(-lexical, n_cand - 1)[:n_cand] if n_cand < n else np.arange(n)
            parts.append(top[lexical[top] > 0].astype(np.int64))
        rows = np.unique(np.concatenate(parts))
        if doc_ids is not None:
            allowed = set(doc_ids)
            rows = np.array([r for r in rows.tolist() if store.sentences[r].doc_id in allowed], dtype=np.int64)
            if not len(rows):  # filtered corpora may be small: rank every allowed sentence
                rows = np.array(sorted(i for d in allowed for i in store.rows_of(d)), dtype=np.int64)
        if not len(rows):
            return empty
        return Candidates(rows, self._features(query, q, lq, lexical, rows), corpus_cov)

    def _neighbours(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Previous and next row in the same document, or -1."""
        sents = self.store.sentences
        n = len(sents)
        prev = np.full(len(rows), -1, dtype=np.int64)
        nxt = np.full(len(rows), -1, dtype=np.int64)
        for i, r in enumerate(rows.tolist()):
            doc, pos = sents[r].doc_id, sents[r].n
            if r > 0 and sents[r - 1].doc_id == doc and sents[r - 1].n == pos - 1:
                prev[i] = r - 1
            if r + 1 < n and sents[r + 1].doc_id == doc and sents[r + 1].n == pos + 1:
                nxt[i] = r + 1
        return prev, nxt

    def _features(
        self,
        query: str,
        q: NDArray[np.float32],
        lq: LexicalQuery,
        lexical: NDArray[np.float32],
        rows: NDArray[np.int64],
    ) -> NDArray[np.float32]:
        store = self.store
        vec = store.vectors
        prev, nxt = self._neighbours(rows)
        has_prev, has_next = prev >= 0, nxt >= 0
        v = vec[rows]
        vp = np.where(has_prev[:, None], vec[np.maximum(prev, 0)], 0.0)
        vn = np.where(has_next[:, None], vec[np.maximum(nxt, 0)], 0.0)
        dense = v @ q
        dense_prev = vp @ q
        dense_next = vn @ q
        win = v + vp + vn
        win_norm = np.linalg.norm(win, axis=1)
        window = (win @ q) / np.maximum(win_norm, 1e-9)

        mass = lq.mass if lq.mass > 0 else 1.0
        bm25 = lexical[rows]
        bm25_prev = np.where(has_prev, lexical[np.maximum(prev, 0)], 0.0)
        bm25_next = np.where(has_next, lexical[np.maximum(nxt, 0)], 0.0)
        bm25_max = float(bm25.max()) if bm25.size else 0.0

        pres = self.lexical.term_presence(lq, rows)
        pres_prev = self.lexical.term_presence(lq, np.maximum(prev, 0)) & has_prev[:, None]
        pres_next = self.lexical.term_presence(lq, np.maximum(nxt, 0)) & has_next[:, None]
        coverage = (pres @ lq.term_idf) / mass
        coverage_window = ((pres | pres_prev | pres_next) @ lq.term_idf) / mass

        dense_rank = np.empty(len(rows), dtype=np.float64)
        dense_rank[np.argsort(-dense, kind="stable")] = np.arange(len(rows))
        bm25_rank = np.empty(len(rows), dtype=np.float64)
        bm25_rank[np.argsort(-bm25, kind="stable")] = np.arange(len(rows))

        texts = [store.sentences[r].text for r in rows.tolist()]
        length = np.log(np.array([max(len(t), 1) for t in texts], dtype=np.float64))
        cues = type_cues(query, texts)

        cols = [
            dense,
            dense_prev,
            dense_next,
            window,
            bm25 / mass,
            bm25 / bm25_max if bm25_max > 0 else np.zeros(len(rows)),
            bm25_prev / mass,
            bm25_next / mass,
            coverage,
            coverage_window,
            np.log1p(dense_rank),
            np.log1p(bm25_rank),
            length,
            cues[:, 0],
            cues[:, 1],
            cues[:, 2],
            cues[:, 3],
        ]
        return np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)

    def score(self, cand: Candidates) -> tuple[NDArray[np.float32], float]:
        """Ranking scores of the candidates and the query's confidence, as ``search`` uses them."""
        learned = rank_scores(cand.features, self.weights)
        conf = confidence(abstain_features(cand, learned), self.weights)
        scores = learned if self.config.scorer == "learned" else rrf_scores(cand.features)
        return scores, conf

    def search(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The top ``k`` sentences, best first, optionally only from ``doc_ids``."""
        cand = self.candidates(query, k, doc_ids=doc_ids)
        if not len(cand):
            return []
        scores, conf = self.score(cand)
        order = np.argsort(-scores, kind="stable")[:k]
        dense_col, bm25_col = FEATURES.index("dense"), FEATURES.index("bm25")
        return [
            RankedHit(
                sentence=self.store.sentences[int(cand.rows[j])],
                score=float(scores[j]),
                rank=rank,
                dense=float(cand.features[j, dense_col]),
                lexical=float(cand.features[j, bm25_col]),
                confidence=conf,
            )
            for rank, j in enumerate(order.tolist())
        ]

    def abstains(self, hits: Sequence[Hit]) -> bool:
        """True when the evidence that the corpus answers the question is below the fitted threshold."""
        if not hits:
            return True
        top = hits[0]
        conf = top.confidence if isinstance(top, RankedHit) else top.score
        return conf < self.weights.abstain_below
