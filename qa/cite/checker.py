"""The claim checker: is one claim supported by candidate source sentences, and by which?

    judge(claim, sources, cited=(0,), idf=rarity) -> Verdict(supported, score, support)

``claim`` and ``sources`` carry their MiniLM embeddings (``qa.cite.features``); ``check_claim`` does
the same from plain strings with an embedder. With ``cited`` the claim is first judged against its
cited sentences alone: if they support it, ``support`` is those of them that add to it. Otherwise it
is judged against all the sources and, if they support it, re-attributed to the best-supporting
sentence (plus those that cover the rest of its words).

The model (``claim_weights.json``, fitted by ``qa eval claims.jsonl --fit``) has two regimes. A claim
that shares a verbatim run of at least ``gate`` words with one source sentence is "extractive" and is
judged by how well its words align with that sentence's tokens (a fused or trimmed copy aligns worse);
any other claim is "abstractive" and is judged by its worst word (a word the sources contain scores 1,
a number they lack 0, any other word its best MiniLM token cosine anywhere in the sources). Each regime
is a small logistic model with its own threshold; ``score`` is its probability shifted so that 0.5 is
the decision threshold (fitted for balanced classes, not calibrated to a rate of unsupported claims).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.cite.claims import clauses
from qa.cite.features import FEATURE_NAMES, MAX_RUN_CAP, Claim, Features, Idf, Sources, claim_features, prepare_sources
from qa.cite.words import words
from qa.errors import ConfigError
from qa.index.terms import QUESTION_WORDS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder

WEIGHTS_FILE = Path(__file__).with_name("claim_weights.json")
FORMAT = 1
#: A sentence added to a re-attribution must cover at least this share of the claim's (rarity-weighted) words.
MIN_COVER_GAIN = 0.15
#: An answer sentence of fewer words than this ("40 million euros.", "Yoav Gallant.") is a short answer: it is
#: read together with its question.
SHORT_CLAIM_WORDS = 4
#: An abstractive claim with a number, or (in English) a name, that no source contains is unsupported whatever
#: its other words say (the commonest hallucination in news): its logit is at most this (score 0.12).
VETO_LOGIT = -2.0


def vetoed(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Rows (``FEATURE_NAMES`` order) whose claim has a number, or in English a name, the sources lack."""
    x = np.atleast_2d(x)
    return np.asarray((x[:, FEATURE_NAMES.index("num_missing")] > 0) | (x[:, FEATURE_NAMES.index("name_missing")] > 0))


@dataclass(frozen=True)
class Verdict:
    """The check of one claim: supported or not, how strongly, and by which sources (indices, best first)."""

    supported: bool
    score: float  # the model's probability that the sources support the claim; 0.5 is the decision threshold
    support: tuple[int, ...]  # indices into the sources; () when unsupported
    kept_citation: bool = False  # supported by (some of) the sentences it cited


@dataclass(frozen=True)
class Expert:
    """One regime's logistic model over its own few features, and its threshold on the logit."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def logit(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Decision logits (>= 0: supported) of rows whose columns are ``self.names``."""
        return np.asarray(x @ np.asarray(self.weights, dtype=np.float64) + self.bias - self.threshold)

    def to_json(self) -> dict[str, Any]:
        return {"features": dict(zip(self.names, self.weights, strict=True)), "bias": self.bias,
                "threshold": self.threshold}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Expert:
        names = tuple(raw["features"])
        unknown = [n for n in names if n not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown features {unknown}")
        return cls(names, tuple(float(raw["features"][n]) for n in names), float(raw["bias"]),
                   float(raw["threshold"]))


@dataclass(frozen=True)
class ClaimModel:
    """Two experts and the gate between them: a verbatim run of ``gate`` words makes a claim extractive."""

    gate: int
    extractive: Expert
    abstractive: Expert
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def is_extractive(self, x: NDArray[np.float64]) -> NDArray[np.bool_]:
        runs = np.rint(np.atleast_2d(x)[:, FEATURE_NAMES.index("max_run")] * MAX_RUN_CAP)
        return np.asarray(runs >= self.gate)

    def logit(self, x: NDArray[np.float64], *, extractive: bool = False) -> NDArray[np.float64]:
        """Decision logits (>= 0: supported) of feature rows in ``FEATURE_NAMES`` order (``extractive``:
        judge every row as a copy of its best sentence, whatever the gate says). An abstractive claim with a
        number or name the sources lack is held below ``VETO_LOGIT``."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        col = FEATURE_NAMES.index
        le = self.extractive.logit(x[:, [col(n) for n in self.extractive.names]])
        la = self.abstractive.logit(x[:, [col(n) for n in self.abstractive.names]])
        la = np.where(vetoed(x), np.minimum(la, VETO_LOGIT), la)
        return np.where(self.is_extractive(x) | extractive, le, la)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feature_names": list(FEATURE_NAMES),
            "gate": {"feature": "max_run", "min_words": self.gate},
            "extractive": self.extractive.to_json(),
            "abstractive": self.abstractive.to_json(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClaimModel:
        """Read a model by feature name, so a file written for other features fails loudly."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        if list(raw.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError("fitted on other features than this version's FEATURE_NAMES")
        if raw["gate"]["feature"] != "max_run":
            raise ValueError("the gate must be max_run")
        return cls(int(raw["gate"]["min_words"]), Expert.from_json(raw["extractive"]),
                   Expert.from_json(raw["abstractive"]), dict(raw.get("meta", {})))

    @classmethod
    def load(cls, path: str | Path) -> ClaimModel:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Could not read the claim-check weights {path}: {exc}. Refit them with `qa eval CLAIMS.jsonl --fit`."
            ) from exc


@lru_cache(maxsize=1)
def default_model() -> ClaimModel:
    """The shipped model (fitted on all the dev claims; see the file's ``meta``)."""
    return ClaimModel.load(WEIGHTS_FILE)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def sources_idf(texts: Sequence[str]) -> Idf:
    """Rarity within the sources themselves (BM25 IDF over the sentences / the IDF of an unknown stem):
    what is used when no index gives a background.

    >>> idf = sources_idf(["the cat sat", "the dog ran"])
    >>> idf("the") < idf("cat") < idf("zebra") == 1.0
    True
    """
    df: dict[str, int] = {}
    for t in texts:
        for s in {w.stem for w in words(t)}:
            df[s] = df.get(s, 0) + 1
    n = max(len(texts), 1)
    top = math.log1p((n + 0.5) / 0.5)

    def idf(stem: str) -> float:
        d = df.get(stem, 0)
        return math.log1p((n - d + 0.5) / (d + 0.5)) / top

    return idf


def _attribution(feats: Features) -> tuple[int, ...]:
    """The best-supporting sentence, then the cover's sentences that add enough of the claim's words."""
    return tuple(j for k, (j, g) in enumerate(zip(feats.cover, feats.cover_gain, strict=True))
                 if k == 0 or g >= MIN_COVER_GAIN)


def judge(
    claim: Claim, sources: Sources, cited: Sequence[int] = (), *, idf: Idf | None = None,
    model: ClaimModel | None = None,
) -> Verdict:
    """Is ``claim`` supported by ``sources`` (by its ``cited`` ones first)? See the module docstring."""
    model = model or default_model()
    rarity = idf or sources_idf(sources.texts)
    n = len(sources)
    if n == 0 or not claim.text.strip():
        return Verdict(False, 0.0, ())
    chosen = [i for i in dict.fromkeys(cited) if 0 <= i < n]
    if chosen:
        feats = claim_features(claim, sources.take(chosen), rarity)
        z = float(model.logit(feats.values, extractive=claim.single)[0])
        if z >= 0:
            keep = (chosen[feats.cover[0]],) if claim.single else tuple(chosen[j] for j in _attribution(feats))
            return Verdict(True, sigmoid(z), keep, kept_citation=True)
    feats = claim_features(claim, sources, rarity)
    z = float(model.logit(feats.values, extractive=claim.single)[0])
    support = (feats.cover[0],) if claim.single else _attribution(feats)
    return Verdict(z >= 0, sigmoid(z), support if z >= 0 else ())


def judge_clauses(
    parts: Sequence[Claim], sources: Sources, cited: Sequence[int] = (), *, idf: Idf | None = None,
    model: ClaimModel | None = None,
) -> Verdict:
    """One sentence judged clause by clause (``qa.cite.claims.clauses``): supported when every clause is,
    as strongly as its weakest, by the sentences that support any of them."""
    verdicts = [judge(p, sources, cited, idf=idf, model=model) for p in parts]
    if len(verdicts) == 1:
        return verdicts[0]
    supported = all(v.supported for v in verdicts)
    support = tuple(dict.fromkeys(i for v in verdicts for i in v.support)) if supported else ()
    return Verdict(supported, min(v.score for v in verdicts), support, all(v.kept_citation for v in verdicts))


def claim_parts(claim: str, question: str = "", *, split: bool = True) -> list[tuple[str, bool]]:
    """What is checked for one answer sentence: its clauses, or, for a short answer ("40 million euros.",
    fewer than four words) given with its question, the question's content and the answer together, to be
    found in one sentence.

    >>> claim_parts("40 million euros.", "How much did the bridge cost?")
    [('the bridge cost? 40 million euros.', True)]
    >>> claim_parts("It cost 40 million euros, and the toll is two euros.")
    [('It cost 40 million euros', False), ('the toll is two euros.', False)]
    """
    if question and len(words(claim)) < SHORT_CLAIM_WORDS:
        frame = " ".join(w for w in question.split() if w.lower().strip("?.,!\"'") not in QUESTION_WORDS)
        return [(f"{frame} {claim}".strip(), True)]
    return [(p, False) for p in (clauses(claim) if split else [claim])]


def check_claim(
    claim: str, sources: Sequence[str], cited: Sequence[int] = (), *, embedder: Embedder | None = None,
    idf: Idf | None = None, model: ClaimModel | None = None, question: str = "", split: bool = True,
) -> Verdict:
    """The checker on plain strings: ``claim`` against the candidate ``sources`` (``cited``: indices).

    Embeds both with ``embedder`` (token vectors too, when it gives them; without an embedder the check
    is lexical only), judges each clause of a sentence that joins claims (unless not ``split``), and a
    short answer together with its ``question`` (``claim_parts``). The product passes stored vectors
    instead (``qa.cite.evidence``).
    """
    texts = list(sources)
    checked = claim_parts(claim, question, split=split)
    parts = [p for p, _ in checked]
    if embedder is None:
        vectors = np.zeros((len(texts) + len(parts), 1), dtype=np.float32)
        tokens = None
    else:
        vectors = embedder.encode([*parts, *texts])
        tokens = embedder.encode_tokens([*parts, *texts]) if embedder.can_encode_tokens else None
    encoded = [
        Claim(p, vectors[i], tokens[i][0] if tokens else None, tokens[i][1] if tokens else None, single)
        for i, (p, single) in enumerate(checked)
    ]
    k = len(parts)
    prepared = prepare_sources(texts, vectors[k:], [t for t, _ in tokens[k:]] if tokens is not None else None)
    return judge_clauses(encoded, prepared, cited, idf=idf, model=model)
