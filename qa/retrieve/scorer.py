"""The fitted scorer: feature weights, the stage-1 and rerank orderings, and the abstention model.

Weights are fitted on held-out folds by ``qa eval DATASET --fit`` and shipped in ``weights.json``
(JSON, never pickle). ``rank`` is shared by the ``Retriever`` and the evaluation harness, so what
is measured is exactly what ships.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.errors import ConfigError
from qa.retrieve.answerability import PROBE_FEATURES, RUNNER_FEATURES
from qa.retrieve.features import FEATURES

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.retrieve.candidates import Candidates

WEIGHTS_FILE = Path(__file__).with_name("weights.json")

#: Late-interaction features the rerank adds to the stage-1 features.
LATE_FEATURES: tuple[str, ...] = (
    "late",  # IDF-weighted mean over question tokens of the best cosine to a sentence token
    "late_prev",  # the same against the tokens of the sentence and its predecessor (answers follow matches)
    "late_next",  # … and its successor
    "late_prev_alone",  # the predecessor alone: "the question matches the sentence before this one"
)
RERANK_FEATURES: tuple[str, ...] = FEATURES + LATE_FEATURES

_RUNNER = np.array([PROBE_FEATURES.index(name) for name in RUNNER_FEATURES])

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
    "margin",  # the best score minus the runner-up's: a clear winner is more likely an answer
    *PROBE_FEATURES,  # the top passage's own evidence (``qa.retrieve.answerability``)
    *(f"runner_{name}" for name in RUNNER_FEATURES),  # the runner-up's: the answer is often cited second
)
_DATED = ABSTAIN_FEATURES.index("dated")


def is_dated(evidence: NDArray[np.float64]) -> bool:
    """Whether the evidence's top sentence comes from a dated article (news): it picks the threshold."""
    return bool(evidence[_DATED] > 0.5)



# ----- fitted weights ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AbstainModel:
    """Logistic belief that the corpus answers the question; abstain below the threshold of the top
    sentence's kind of article: ``below_dated`` for a dated one (news), ``below`` for the rest.

    Two thresholds because one belief is not calibrated alike on both: a news-quiz question the article
    answers scores higher than an encyclopedia one, so the threshold that lets 3 % of the latter abstain
    lets almost no news question abstain, and passes most on-topic news questions the article does not answer.
    """

    weights: tuple[float, ...]
    bias: float
    below: float
    below_dated: float

    def confidence(self, evidence: NDArray[np.float64]) -> float:
        z = float(evidence @ np.asarray(self.weights, dtype=np.float64)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def threshold(self, evidence: NDArray[np.float64]) -> float:
        """The threshold that applies to this evidence (by its ``dated`` flag)."""
        return self.below_dated if is_dated(evidence) else self.below

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(zip(ABSTAIN_FEATURES, self.weights, strict=True)), "bias": self.bias,
                "below": self.below, "below_dated": self.below_dated}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AbstainModel:
        return cls(_by_name(raw["weights"], ABSTAIN_FEATURES), float(raw["bias"]), float(raw["below"]),
                   float(raw["below_dated"]))


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
        never = AbstainModel((0.0,) * len(ABSTAIN_FEATURES), 0.0, 0.0, 0.0)
        return cls((0.0,) * len(FEATURES), (0.0,) * len(RERANK_FEATURES), never, never)

    @classmethod
    def load(cls, path: str | Path) -> ScorerWeights:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Could not read the retrieval weights {path}: {exc}. "
                "Refit them with `qa eval DATASET --fit`."
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


_LATE_PROBES = np.array([name.startswith("late_") for name in PROBE_FEATURES])


class Probe(Protocol):
    """Reads the abstention evidence of candidates, by position, once ranked."""

    def top(self, position: int) -> NDArray[np.float64]:
        """``PROBE_FEATURES`` of the top candidate."""
        ...

    def runner(self, position: int) -> NDArray[np.float64]:
        """``RUNNER_FEATURES`` of the runner-up (the text-level part: cheaper, and all that is used)."""
        ...


def evidence(
    cand: Candidates,
    scores: NDArray[np.float32],
    late_max: float,
    probed: NDArray[np.float64] | None,
    runner: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Query-level evidence in the order of ``ABSTAIN_FEATURES`` (``scores`` best first); ``probed`` holds the
    ``PROBE_FEATURES`` of the top candidate, ``runner`` the ``RUNNER_FEATURES`` of the runner-up. Without a
    runner-up (one candidate: a one-sentence document, or a search kept to one) the top one stands for it: zeros
    would read as a runner-up that fills nothing, and "When does the library close?" of "The library
    closes at six." abstained."""
    top = probed if probed is not None else np.zeros(len(PROBE_FEATURES), dtype=np.float64)
    second = runner if runner is not None else top[_RUNNER]
    extra = np.concatenate([top, second])
    if not len(cand):
        head = [0.0] * 6 + [cand.corpus_coverage, 0.0, 0.0]
        return np.concatenate([np.array(head, dtype=np.float64), extra])
    f = cand.features
    col = FEATURES.index
    margin = float(scores[0] - scores[1]) if len(scores) > 1 else 1.0
    head = [
        float(scores[0]),
        float(f[:, col("dense")].max()),
        float(f[:, col("dense_idf")].max()),
        float(f[:, col("window")].max()),
        float(f[:, col("coverage")].max()),
        float(f[:, col("coverage_window")].max()),
        cand.corpus_coverage,
        late_max,
        margin,
    ]
    return np.concatenate([np.array(head, dtype=np.float64), extra])


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
    probe: Probe | None = None,
) -> Ranking:
    """Order candidates: the reranked set by its late-interaction score, then the rest by stage 1;
    then decide, from query-level evidence and ``probe`` of the top candidate, whether they answer.

    ``late`` holds ``LATE_FEATURES`` for the positions in ``selected``; without them stage 1 decides.
    Shared by ``Retriever.search`` and ``qa eval``, so the harness measures exactly what ships.
    """
    s1 = linear(cand.features, weights.stage1)
    if late is None or selected is None or not len(selected):
        order = np.argsort(-s1, kind="stable")
        model = weights.abstain_stage1
        probed = probe.top(int(order[0])) if probe is not None and len(order) else None
        if probed is not None:  # stage 1 alone decides without token embeddings: its model never sees them
            probed = np.where(_LATE_PROBES, 0.0, probed)
        runner = probe.runner(int(order[1])) if probe is not None and len(order) > 1 else None
        ev = evidence(cand, s1[order], 0.0, probed, runner)
        return Ranking(order, s1[order], model.confidence(ev), model.threshold(ev), False, ev)
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
    ev = evidence(
        cand, s2[top], float(late[:, 0].max()),
        probe.top(int(head[0])) if probe is not None else None,
        probe.runner(int(head[1])) if probe is not None and len(head) > 1 else None,
    )
    return Ranking(
        np.concatenate([head, rest]).astype(np.int64),
        np.concatenate([s2[top], np.asarray(tail, dtype=np.float32)]).astype(np.float32),
        weights.abstain.confidence(ev),
        weights.abstain.threshold(ev),
        True,
        ev,
    )


