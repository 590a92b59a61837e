"""Stage 4: find the sentences that answer a question, and decide when none does.

Three steps, each with weights fitted on held-out folds by ``python -m qa.eval DATASET --fit`` and
shipped in ``retrieval_weights.json`` (JSON, never pickle):

1. **Candidates**: the union of the dense (FAISS) and BM25 top lists (plus the sentence after
   each list's top few, where answers that follow the matching sentence live).
2. **Stage 1**, a linear scorer over cheap features of every candidate: dense similarity of
   the sentence, its neighbours and its window; BM25 normalised by the question's IDF mass (so it
   means the same across questions, unlike max-normalised BM25); IDF coverage; rank features;
   answer-type cues ("how many" → a number the question lacks, "when" → a date, "who" → a name).
3. **Rerank** (``RetrievalConfig.rerank``), a late-interaction stage over the stage-1 top few:
   every question token is matched to its most similar token of the sentence (and of the
   sentence with a neighbour), weighted by the word's IDF — BERTScore-style, with the same
   MiniLM's token embeddings. It runs when the embedder offers ``encode_tokens`` (see
   ``TokenEmbedder``); otherwise stage 1 decides alone, with its own fitted abstention model.

Abstention is a logistic model over query-level evidence (best scores, best IDF coverage, the share
of the question's IDF mass the corpus knows at all), fitted on answerable vs off-topic questions
and thresholded to abstain on 99 % of the off-topic training questions while rejecting at most 2 %
of the answerable ones: an irrelevant top lexical match no longer looks perfect.

Per query the work is O(N) numpy (BM25 scores, top-k selection) plus Python over the candidate
set only (a few hundred rows), and the rerank encodes at most ``rerank_top + rerank_next`` sentences
and their predecessors (cached), so it stays fast at a million sentences.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qa.embed import Embedder, normalize
from qa.errors import ConfigError
from qa.lexical import QUESTION_WORDS as QUESTION_WORDS
from qa.lexical import WH_WORDS as WH_WORDS
from qa.lexical import LexicalIndex as LexicalIndex
from qa.lexical import LexicalQuery as LexicalQuery
from qa.lexical import _stemmer, _stopwords, from_saved
from qa.lexical import idf as idf
from qa.lexical import tokenize as tokenize
from qa.store import Store
from qa.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

WEIGHTS_FILE = Path(__file__).with_name("retrieval_weights.json")

#: Stage-1 features of each candidate, in the column order of ``Candidates.features``.
FEATURES: tuple[str, ...] = (
    "dense",  # cosine(question, sentence)
    "dense_idf",  # cosine(IDF-weighted pooling of the question's tokens, sentence); = dense without tokens
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

#: Late-interaction features the rerank adds to the stage-1 features.
LATE_FEATURES: tuple[str, ...] = (
    "late",  # IDF-weighted mean over question tokens of the best cosine to a sentence token
    "late_prev",  # the same against the tokens of the sentence and its predecessor (answers follow matches)
    "late_next",  # … and its successor
    "late_prev_alone",  # the predecessor alone: "the question matches the sentence before this one"
)
RERANK_FEATURES: tuple[str, ...] = FEATURES + LATE_FEATURES

#: Query-level evidence for abstention.
ABSTAIN_FEATURES: tuple[str, ...] = (
    "top_score",  # best final score (rerank score when the rerank ran, else stage 1)
    "dense_max",  # best cosine to any candidate sentence
    "dense_idf_max",  # best cosine of the IDF-pooled question
    "window_max",  # best cosine to any candidate window
    "coverage_max",  # best IDF coverage of any sentence
    "coverage_window_max",  # best IDF coverage of any window
    "corpus_coverage",  # share of the question's IDF mass whose terms occur anywhere in the corpus
    "late_max",  # best late-interaction score (0 without the rerank)
)


# ----- fitted weights ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AbstainModel:
    """Logistic belief that the corpus answers the question; abstain below ``below``."""

    weights: tuple[float, ...]
    bias: float
    below: float

    def confidence(self, evidence: NDArray[np.float64]) -> float:
        z = float(evidence @ np.asarray(self.weights, dtype=np.float64)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(zip(ABSTAIN_FEATURES, self.weights, strict=True)), "bias": self.bias,
                "below": self.below}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AbstainModel:
        return cls(_by_name(raw["weights"], ABSTAIN_FEATURES), float(raw["bias"]), float(raw["below"]))


def _by_name(raw: Mapping[str, Any], names: Sequence[str]) -> tuple[float, ...]:
    if set(raw) != set(names):
        raise ValueError(f"feature names {sorted(raw)} differ from this version's {sorted(names)}")
    return tuple(float(raw[n]) for n in names)


@dataclass(frozen=True)
class ScorerWeights:
    """Everything fitted: raw-feature weights (no scaling at query time) and both abstention models."""

    stage1: tuple[float, ...]
    rerank: tuple[float, ...]
    abstain: AbstainModel  # used when the rerank ran
    abstain_stage1: AbstainModel  # used when it did not
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.stage1) != len(FEATURES) or len(self.rerank) != len(RERANK_FEATURES):
            raise ValueError("weights do not match the feature lists")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 2,
            "stage1": dict(zip(FEATURES, self.stage1, strict=True)),
            "rerank": dict(zip(RERANK_FEATURES, self.rerank, strict=True)),
            "abstain": self.abstain.to_json(),
            "abstain_stage1": self.abstain_stage1.to_json(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ScorerWeights:
        """Read weights by feature name, so a file written for other features fails loudly."""
        return cls(
            stage1=_by_name(raw["stage1"], FEATURES),
            rerank=_by_name(raw["rerank"], RERANK_FEATURES),
            abstain=AbstainModel.from_json(raw["abstain"]),
            abstain_stage1=AbstainModel.from_json(raw["abstain_stage1"]),
            meta=dict(raw.get("meta", {})),
        )

    @classmethod
    def zeros(cls) -> ScorerWeights:
        """All-zero weights that never abstain: a placeholder where scores are not used (fitting)."""
        never = AbstainModel((0.0,) * len(ABSTAIN_FEATURES), 0.0, 0.0)
        return cls((0.0,) * len(FEATURES), (0.0,) * len(RERANK_FEATURES), never, never)

    @classmethod
    def load(cls, path: str | Path) -> ScorerWeights:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Could not read the retrieval weights {path}: {exc}. "
                "Refit them with `python -m qa.eval DATASET --fit`."
            ) from exc


@lru_cache(maxsize=1)
def default_weights() -> ScorerWeights:
    """The shipped weights (fitted on all dev articles; see the file's ``meta``)."""
    return ScorerWeights.load(WEIGHTS_FILE)


@dataclass(frozen=True)
class RetrievalConfig:
    """How candidates are gathered and scored; ``weights=None`` means the shipped fitted weights."""

    candidates: int = 100
    rerank: bool = True  # the late-interaction stage, when the embedder offers token embeddings
    rerank_top: int = 15  # stage-1 best sentences the rerank rescores
    rerank_next: int = 5  # … plus the sentence after each of the stage-1 best this many
    weights: ScorerWeights | None = None

    def resolved_weights(self) -> ScorerWeights:
        return self.weights if self.weights is not None else default_weights()


@dataclass(frozen=True)
class RankedHit(Hit):
    """A hit that also carries the query-level confidence that the corpus answers the question."""

    confidence: float = 1.0
    threshold: float = 0.0  # abstain when ``confidence`` is below it


# ----- answer-type cues -------------------------------------------------------------------------

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
    r"\b([1-9]\d{2}|1\d{3}|20\d{2})s?\b|\b\d{1,2}(st|nd|rd|th)\b|\bcentur(y|ies)\b"
    r"|\b(january|february|march|april|may|june|july|august|september|october|november|december)\b|\b(monday|tuesday|wednesday|thursday|friday|saturday"
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


# ----- token embeddings for the rerank -----------------------------------------------------------

#: One text's token embeddings: unit rows for its non-special tokens, and their (start, end) offsets.
TokenVectors = tuple["NDArray[np.float32]", "NDArray[np.int64]"]


@runtime_checkable
class TokenEmbedder(Protocol):
    """An embedder that can also return contextual token embeddings (needed by the rerank)."""

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]: ...


class SentenceTransformerTokens:
    """``encode_tokens`` for a loaded sentence-transformers model (the torch embedder's, reused)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        return self.encode_both(texts)[1]

    def encode_both(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[TokenVectors]]:
        """Sentence vectors and token vectors from one pass of the model."""
        model = self.model
        if not texts:
            return np.zeros((0, int(model.get_embedding_dimension())), dtype=np.float32), []
        enc = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length,
                              return_offsets_mapping=True)
        outs = model.encode(list(texts), output_value=None, batch_size=64, convert_to_numpy=False)
        sentence = normalize(np.stack([np.asarray(o["sentence_embedding"].float().cpu().numpy()) for o in outs]))
        result: list[TokenVectors] = []
        for out, offsets in zip(outs, enc["offset_mapping"], strict=True):
            v = np.asarray(out["token_embeddings"].float().cpu().numpy(), dtype=np.float32)
            off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            keep = off[:, 1] > off[:, 0]  # special tokens have empty spans
            n = min(len(v), len(off))
            keep = keep[:n]
            result.append((normalize(v[:n][keep]), off[:n][keep]))
        return sentence, result


def token_embedder_for(embedder: Embedder) -> TokenEmbedder | None:
    """The embedder's own token embeddings, or those of its already loaded torch model; else None.

    Never loads a second model: the query path must not import torch behind the ONNX embedder's back.
    """
    if isinstance(embedder, TokenEmbedder):
        return embedder
    from qa.embed import SentenceTransformerEmbedder

    inner = getattr(embedder, "_fallback", None) or embedder  # the ONNX embedder's torch fallback, if used
    if isinstance(inner, SentenceTransformerEmbedder):
        return SentenceTransformerTokens(inner._load())
    return None


class TokenCache:
    """Token embeddings of recently seen texts (float16), so follow-up questions re-encode nothing."""

    def __init__(self, encoder: TokenEmbedder, capacity: int = 4096) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self._items: OrderedDict[str, NDArray[np.float16]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: Sequence[str]) -> list[NDArray[np.float32]]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for t in found:
                self._items.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = [vec.astype(np.float16) for vec, _ in self.encoder.encode_tokens(missing)]
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._items.update(zip(missing, fresh, strict=True))
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return [found[t].astype(np.float32) for t in texts]


@dataclass(frozen=True)
class QueryTokens:
    """The question's token embeddings and each token's weight (the IDF of the word it belongs to)."""

    vectors: NDArray[np.float32]
    weights: NDArray[np.float64]

    def pooled(self) -> NDArray[np.float32]:
        """IDF-weighted pooling: a question vector that is not dominated by "what", "the" and "?"."""
        v = (self.weights[:, None] * self.vectors).sum(axis=0, keepdims=True)
        pooled: NDArray[np.float32] = normalize(v)[0]
        return pooled


_WORDS = re.compile(r"(?u)\b\w\w+\b")  # bm25s's token pattern


def token_weights(question: str, offsets: NDArray[np.int64], lexical: LexicalIndex) -> NDArray[np.float64]:
    """Weight each question token by the BM25 IDF of its word; question words weigh as much as an
    unknown word (the most), stop words, the question's frame and punctuation nothing.

    Uniform weights when nothing is left, so a question of stop words still gets a score.
    """
    words = [(m.start(), m.end(), m.group().lower()) for m in _WORDS.finditer(question)]
    stop = _stopwords() | QUESTION_WORDS
    stems = _stemmer().stemWords([w for _, _, w in words]) if words else []
    unknown = lexical.unknown_idf()
    word_idf = [
        unknown if w in WH_WORDS else 0.0 if w in stop else lexical.term_idf(s)
        for (_, _, w), s in zip(words, stems, strict=True)
    ]
    out = np.zeros(len(offsets), dtype=np.float64)
    starts = np.array([s for s, _, _ in words], dtype=np.int64)
    ends = np.array([e for _, e, _ in words], dtype=np.int64)
    for i, (s, _) in enumerate(offsets.tolist()):
        j = int(np.searchsorted(starts, s, side="right")) - 1
        if 0 <= j < len(words) and s < ends[j]:
            out[i] = word_idf[j]
    if out.sum() <= 0:
        out[:] = 1.0
    return out


def late_score(q: QueryTokens, tokens: NDArray[np.float32]) -> float:
    """IDF-weighted mean over question tokens of the best cosine to any of ``tokens``.

    >>> qt = QueryTokens(np.eye(2, dtype=np.float32), np.array([3.0, 1.0]))
    >>> late_score(qt, np.array([[1.0, 0.0]], dtype=np.float32))
    0.75
    """
    if not len(tokens) or not len(q.vectors):
        return 0.0
    best = (q.vectors @ tokens.T).max(axis=1)
    return float((best * q.weights).sum() / q.weights.sum())


# ----- candidates, features and scores ------------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """The candidate rows for one question, their stage-1 features, and the query-level evidence."""

    rows: NDArray[np.int64]
    features: NDArray[np.float32]  # (len(rows), len(FEATURES))
    next_index: NDArray[np.int64]  # position in ``rows`` of each row's next sentence, or -1
    corpus_coverage: float
    query_tokens: QueryTokens | None = None

    def __len__(self) -> int:
        return len(self.rows)


def linear(features: NDArray[np.float32], weights: Sequence[float]) -> NDArray[np.float32]:
    """Linear scores of feature rows (higher is better).

    >>> linear(np.array([[1.0, 2.0]], dtype=np.float32), (0.5, 1.0)).tolist()
    [2.5]
    """
    return np.asarray(features @ np.asarray(weights, dtype=np.float32), dtype=np.float32)


def rrf_scores(features: NDArray[np.float32], k: float = 60.0) -> NDArray[np.float32]:
    """Reciprocal-rank fusion of the dense and BM25 ranks: the untrained hybrid baseline.

    >>> [round(float(x), 4) for x in rrf_scores(np.zeros((2, len(FEATURES)), dtype=np.float32))]
    [0.0328, 0.0328]
    """
    d = np.expm1(features[:, FEATURES.index("dense_rank")])
    b = np.expm1(features[:, FEATURES.index("bm25_rank")])
    return np.asarray(1.0 / (k + 1 + d) + 1.0 / (k + 1 + b), dtype=np.float32)


def rerank_set(stage1: NDArray[np.float32], next_index: NDArray[np.int64], top: int, nxt: int) -> NDArray[np.int64]:
    """Candidate positions the rerank rescores: the stage-1 best ``top``, then the next sentence of
    each of the best ``nxt`` (answers often follow the sentence that matches the question).

    >>> rerank_set(np.array([0.1, 0.9, 0.5], dtype=np.float32), np.array([1, 2, -1]), 1, 1).tolist()
    [1, 2]
    """
    order = np.argsort(-stage1, kind="stable")
    chosen = list(order[:top].tolist())
    seen = set(chosen)
    for j in order[:nxt].tolist():
        n = int(next_index[j])
        if n >= 0 and n not in seen:
            chosen.append(n)
            seen.add(n)
    return np.array(chosen, dtype=np.int64)


def evidence(cand: Candidates, top_score: float, late_max: float) -> NDArray[np.float64]:
    """Query-level evidence in the order of ``ABSTAIN_FEATURES``."""
    if not len(cand):
        return np.array([0.0] * (len(ABSTAIN_FEATURES) - 2) + [cand.corpus_coverage, 0.0], dtype=np.float64)
    f = cand.features
    col = FEATURES.index
    return np.array(
        [
            top_score,
            float(f[:, col("dense")].max()),
            float(f[:, col("dense_idf")].max()),
            float(f[:, col("window")].max()),
            float(f[:, col("coverage")].max()),
            float(f[:, col("coverage_window")].max()),
            cand.corpus_coverage,
            late_max,
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class Ranking:
    """The outcome for one question: candidate positions best first, their scores, and the confidence."""

    order: NDArray[np.int64]
    scores: NDArray[np.float32]  # aligned with ``order``, decreasing
    confidence: float
    threshold: float  # the abstention model's threshold: abstain when ``confidence`` is below it
    reranked: bool
    evidence: NDArray[np.float64]  # what the confidence was computed from (``ABSTAIN_FEATURES``)

    @property
    def abstains(self) -> bool:
        return not len(self.order) or self.confidence < self.threshold


def rank(
    cand: Candidates,
    weights: ScorerWeights,
    late: NDArray[np.float32] | None,
    selected: NDArray[np.int64] | None,
) -> Ranking:
    """Order candidates: the reranked set by its late-interaction score, then the rest by stage 1.

    ``late`` holds ``LATE_FEATURES`` for the positions in ``selected``; without them stage 1 decides.
    Shared by ``Retriever.search`` and ``qa.eval``, so the harness measures exactly what ships.
    """
    s1 = linear(cand.features, weights.stage1)
    if late is None or selected is None or not len(selected):
        order = np.argsort(-s1, kind="stable")
        model = weights.abstain_stage1
        ev = evidence(cand, float(s1.max()) if len(s1) else 0.0, 0.0)
        return Ranking(order, s1[order], model.confidence(ev), model.below, False, ev)
    x = np.hstack([cand.features[selected], late])
    s2 = linear(x, weights.rerank)
    top = np.argsort(-s2, kind="stable")
    head = selected[top]
    rest_mask = np.ones(len(cand), dtype=np.bool_)
    rest_mask[selected] = False
    rest = np.flatnonzero(rest_mask)
    rest = rest[np.argsort(-s1[rest], kind="stable")]
    # scores stay decreasing: the rest continue below the reranked head, spaced as in stage 1
    tail = (float(s2[top[-1]]) - 1.0 - (float(s1[rest[0]]) - s1[rest])) if len(rest) else np.zeros(0)
    ev = evidence(cand, float(s2.max()), float(late[:, 0].max()))
    return Ranking(
        np.concatenate([head, rest]).astype(np.int64),
        np.concatenate([s2[top], np.asarray(tail, dtype=np.float32)]).astype(np.float32),
        weights.abstain.confidence(ev),
        weights.abstain.below,
        True,
        ev,
    )


class Retriever:
    """Ranks the store's sentences for a question, and says when none answers it."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        config: RetrievalConfig | None = None,
        *,
        tokens: TokenCache | None = None,
        lexical: LexicalIndex | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.weights = self.config.resolved_weights()
        if lexical is not None and len(lexical) != len(store):
            raise ValueError("the lexical index must cover the store's sentences")
        if lexical is None and store.lexical is not None:  # saved with the index: no re-tokenising
            lexical = from_saved(store.lexical, len(store))
        self.lexical = lexical if lexical is not None else LexicalIndex([s.text for s in store.sentences])
        if tokens is None and self.config.rerank:
            encoder = token_embedder_for(embedder)
            tokens = TokenCache(encoder) if encoder is not None else None
        self.tokens = tokens if self.config.rerank else None

    @property
    def reranks(self) -> bool:
        """Whether the late-interaction stage runs (it needs token embeddings from the embedder)."""
        return self.tokens is not None

    def _query_tokens(self, query: str) -> QueryTokens | None:
        if self.tokens is None:
            return None
        vectors, offsets = self.tokens.encoder.encode_tokens([query])[0]
        if not len(vectors):
            return None
        return QueryTokens(vectors, token_weights(query, offsets, self.lexical))

    def candidates(
        self,
        query: str,
        k: int = 10,
        *,
        doc_ids: Collection[str] | None = None,
        query_tokens: QueryTokens | None = None,
    ) -> Candidates:
        """Gather candidates from both indexes and compute their stage-1 features."""
        store = self.store
        n = len(store)
        lq = self.lexical.query(query)
        corpus_cov = lq.known_mass / lq.mass if lq.mass > 0 else 0.0
        empty = Candidates(
            np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURES)), dtype=np.float32),
            np.zeros(0, dtype=np.int64), corpus_cov,
        )
        if not n:
            return empty
        qt = query_tokens if query_tokens is not None else self._query_tokens(query)
        q = self.embedder.encode([query])[0]
        lexical = self.lexical.scores(lq)
        n_cand = min(n, max(self.config.candidates, k))
        _, dense_ids = store.search(q[None, :], n_cand)
        dense_top = dense_ids[0][dense_ids[0] >= 0].astype(np.int64)
        parts = [dense_top]
        lex_top = np.zeros(0, dtype=np.int64)
        if lexical.size and lexical.max() > 0:
            top = np.argpartition(-lexical, n_cand - 1)[:n_cand] if n_cand < n else np.arange(n)
            top = top[lexical[top] > 0]
            lex_top = top[np.argsort(-lexical[top], kind="stable")].astype(np.int64)
            parts.append(lex_top)
        heads = np.concatenate([dense_top[:5], lex_top[:5]])
        parts.append(heads[heads + 1 < n] + 1)  # the sentence after each list's best: answers follow matches
        rows = np.unique(np.concatenate(parts))
        if doc_ids is not None:
            allowed = set(doc_ids)
            rows = np.array([r for r in rows.tolist() if store.sentences[r].doc_id in allowed], dtype=np.int64)
            if not len(rows):  # filtered corpora may be small: rank every allowed sentence
                rows = np.array(sorted(i for d in allowed for i in store.rows_of(d)), dtype=np.int64)
        if not len(rows):
            return empty
        features, next_index = self._features(query, q, qt, lq, lexical, rows)
        return Candidates(rows, features, next_index, corpus_cov, qt)

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
        qt: QueryTokens | None,
        lq: LexicalQuery,
        lexical: NDArray[np.float32],
        rows: NDArray[np.int64],
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        store = self.store
        vec = store.vectors
        prev, nxt = self._neighbours(rows)
        has_prev, has_next = prev >= 0, nxt >= 0
        v = vec[rows]
        vp = np.where(has_prev[:, None], vec[np.maximum(prev, 0)], 0.0)
        vn = np.where(has_next[:, None], vec[np.maximum(nxt, 0)], 0.0)
        dense = v @ q
        dense_idf = v @ qt.pooled() if qt is not None else dense
        win = v + vp + vn
        window = (win @ q) / np.maximum(np.linalg.norm(win, axis=1), 1e-9)

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
            dense, dense_idf, vp @ q, vn @ q, window,
            bm25 / mass, bm25 / bm25_max if bm25_max > 0 else np.zeros(len(rows)), bm25_prev / mass, bm25_next / mass,
            coverage, coverage_window,
            np.log1p(dense_rank), np.log1p(bm25_rank), length,
            cues[:, 0], cues[:, 1], cues[:, 2], cues[:, 3],
        ]
        features = np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)
        pos = np.searchsorted(rows, np.maximum(nxt, 0))
        pos = np.minimum(pos, len(rows) - 1)
        next_index = np.where(has_next & (rows[pos] == nxt), pos, -1).astype(np.int64)
        return features, next_index

    def late_features(self, cand: Candidates, selected: NDArray[np.int64]) -> NDArray[np.float32] | None:
        """``LATE_FEATURES`` for the candidate positions in ``selected`` (None without token embeddings)."""
        qt = cand.query_tokens
        if self.tokens is None or qt is None or not len(selected):
            return None
        rows = cand.rows[selected]
        prev, nxt = self._neighbours(rows)
        need = sorted({int(r) for r in rows} | {int(p) for p in prev if p >= 0} | {int(p) for p in nxt if p >= 0})
        stored = self.store.tokens
        if stored is not None:  # computed at index time: a gather, no model run
            toks = dict(zip(need, stored.get(need), strict=True))
        else:
            texts = [self.store.sentences[r].text for r in need]
            toks = dict(zip(need, self.tokens.get(texts), strict=True))
        out = np.zeros((len(rows), len(LATE_FEATURES)), dtype=np.float32)
        for i, (r, p, x) in enumerate(zip(rows.tolist(), prev.tolist(), nxt.tolist(), strict=True)):
            own = toks[r]
            out[i, 0] = late_score(qt, own)
            out[i, 1] = late_score(qt, np.vstack([own, toks[p]])) if p >= 0 else out[i, 0]
            out[i, 2] = late_score(qt, np.vstack([own, toks[x]])) if x >= 0 else out[i, 0]
            out[i, 3] = late_score(qt, toks[p]) if p >= 0 else 0.0
        return out

    def rank(self, cand: Candidates) -> Ranking:
        """Stage 1, then the rerank when token embeddings are available."""
        if not len(cand):
            return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 0.0, 1.0, False,
                           evidence(cand, 0.0, 0.0))
        w = self.weights
        selected = None
        late = None
        if self.tokens is not None and cand.query_tokens is not None:
            cfg = self.config
            selected = rerank_set(linear(cand.features, w.stage1), cand.next_index, cfg.rerank_top, cfg.rerank_next)
            late = self.late_features(cand, selected)
        return rank(cand, w, late, selected)

    def search(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The top ``k`` sentences, best first, optionally only from ``doc_ids``."""
        cand = self.candidates(query, k, doc_ids=doc_ids)
        if not len(cand):
            return []
        ranking = self.rank(cand)
        dense_col, bm25_col = FEATURES.index("dense"), FEATURES.index("bm25")
        return [
            RankedHit(
                sentence=self.store.sentences[int(cand.rows[j])],
                score=float(ranking.scores[i]),
                rank=i,
                dense=float(cand.features[j, dense_col]),
                lexical=float(cand.features[j, bm25_col]),
                confidence=ranking.confidence,
                threshold=ranking.threshold,
            )
            for i, j in enumerate(ranking.order[:k].tolist())
        ]

    def abstains(self, hits: Sequence[Hit]) -> bool:
        """True when the evidence that the corpus answers the question is below the fitted threshold."""
        if not hits:
            return True
        top = hits[0]
        return isinstance(top, RankedHit) and top.confidence < top.threshold
