"""The news protocol: real news articles with quiz questions, asked of each article and of one library.

Questions come from a news-QA JSON-lines file (``doc_id``, ``text``, ``questions: [{question, answers,
answerable}]``) plus optional extra files of the same question format keyed by ``doc_id``
(``--extra``: our own on-topic unanswerable questions and harder answerable ones) and conversations
(``--conversations``: ``{id, doc_ids, turns: [{question, answers}]}``).

Everything is held out: the articles are split into folds, the scorer and abstention are fitted on
the other folds (with the SQuAD articles, when given, always in training) and the questions of the
held-out fold go through the real pipeline (``Pipeline.ask``) with those weights. Figures:

* hit@1: the first citation contains a gold answer (an abstention is a miss);
* answer-hit: a gold answer is inside the answer's cited sentences, counted only when the answer cites
  at most 3 sentences and 120 words;
* recall@5 of the ranked sentences; wrongly abstained (answerable); abstained on on-topic unanswerable
  questions; abstained on off-topic questions (another article's questions);
* in the library (every article in one index): the same, and whether the first citation comes from
  the question's own article;
* conversations: follow-up turns asked with the history and without it; a turn marked unanswerable
  should abstain;
* leads: the share of answered answerable questions whose answer opens with a short span ("$50
  billion."), and the share of those spans that hold a gold answer (or are held by one).

BM25 and plain dense retrieval over the same sentences are the baselines (their answer is their top
sentence, so their answer-hit is their hit@1).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer import ExtractiveGenerator
from qa.config import Settings
from qa.index import FaissIndex, SentenceIndex
from qa.pipeline import Pipeline
from qa.retrieve import RetrievalConfig, ScorerWeights
from qa.tools import metrics
from qa.tools.eval.data import Article, EvalDataError, Question, json_lines, published_of
from qa.tools.eval.embedder import CachingEmbedder
from qa.tools.eval.fit import fit_weights
from qa.tools.eval.harness import Harness, Record, dense_baseline, make_folds, off_topic_partners
from qa.types import Answer, Turn

#: An answer counts for answer-hit only when it is this short.
MAX_CITED_SENTENCES = 3
MAX_CITED_WORDS = 120
NEWS_FOLDS = 4
TARGETS = {"hit_at_1": 0.68, "answer_hit": 0.80, "unanswerable_abstained": 0.60, "wrongly_abstained": 0.05,
           "off_topic_abstained": 0.95}


@dataclass(frozen=True)
class Conversation:
    cid: str
    doc_ids: tuple[str, ...]
    turns: tuple[Question, ...]


def load_news(path: Path, extras: Sequence[Path] = ()) -> list[Article]:
    """Articles of a news-QA file, with the questions of ``extras`` added to their articles."""
    articles: dict[str, Article] = {}
    for n, row in enumerate(_jsonl(path), start=1):
        try:
            doc_id, text = str(row["doc_id"]), str(row["text"])
            questions = tuple(_question(q, f"{doc_id}-{i}") for i, q in enumerate(row.get("questions", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalDataError(str(path), f"line {n} is not a news-QA article ({exc})") from exc
        articles[doc_id] = Article(title=doc_id, text=text, questions=questions, source=path.name,
                                   published=published_of(row))
    for extra in extras:
        for n, row in enumerate(_jsonl(extra), start=1):
            doc_id = str(row.get("doc_id"))
            if doc_id not in articles:
                raise EvalDataError(str(extra), f"line {n} names the unknown article {doc_id!r}")
            a = articles[doc_id]
            q = _question(row, f"{doc_id}-x{n}")
            articles[doc_id] = replace(a, questions=(*a.questions, q))
    if not articles:
        raise EvalDataError(str(path), "it holds no article")
    return list(articles.values())


def load_conversations(path: Path) -> list[Conversation]:
    out = []
    for n, row in enumerate(_jsonl(path), start=1):
        try:
            turns = tuple(_question(t, f"{row['id']}-{i}") for i, t in enumerate(row["turns"]))
            out.append(Conversation(str(row["id"]), tuple(map(str, row["doc_ids"])), turns))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalDataError(str(path), f"line {n} is not a conversation ({exc})") from exc
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EvalDataError(str(path), "no such file")
    return [row for _, row in json_lines(path, "JSON")]


def _question(raw: dict[str, Any], qid: str) -> Question:
    answers = tuple(str(a) for a in raw.get("answers", []))
    answerable = bool(raw.get("answerable", bool(answers))) and bool(answers)
    return Question(qid=str(raw.get("id", qid)), text=str(raw["question"]).strip(), answers=answers,
                    answerable=answerable)


def is_news_file(path: Path) -> bool:
    """A JSON-lines file whose first object has ``doc_id``, ``text`` and ``questions``."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and {"doc_id", "text", "questions"} <= set(row)


# ----- scoring one answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    kind: str  # answerable | unanswerable | off_topic
    abstained: bool
    hit1: bool
    answer_hit: bool
    recall5: bool
    own_doc: bool
    cited: int
    words: int
    lead: str | None = None  # the short answer the text opens with; None for a baseline, which has none
    lead_hit: bool = False


def lead_of(answer: Answer) -> str:
    """The short answer an answer's text opens with, before its first quoted sentence ("" when it opens
    with the quote, or with an article's name as an overview of several articles does)."""
    if answer.abstained:
        return ""
    head = answer.text.split("\u201c", 1)[0].strip()
    return "" if head.endswith(":") else head


def score_answer(kind: str, q: Question, answer: Answer, ranked: Sequence[str], doc_id: str) -> Scored:
    """What one answer earns (relevance by SQuAD-normalised containment of a gold answer)."""
    cited = [c.text for c in answer.citations]
    words = sum(len(c.split()) for c in cited)
    first = cited[0] if cited else ""
    live = not answer.abstained and bool(cited)
    lead = lead_of(answer)
    short = len(cited) <= MAX_CITED_SENTENCES and words <= MAX_CITED_WORDS
    return Scored(
        kind=kind,
        abstained=answer.abstained,
        hit1=live and q.answerable and metrics.contains_answer(first, q.answers),
        answer_hit=live and q.answerable and short and metrics.contains_answer(" ".join(cited), q.answers),
        recall5=q.answerable and any(metrics.contains_answer(t, q.answers) for t in ranked[:5]),
        own_doc=live and answer.citations[0].doc_id == doc_id,
        cited=len(cited),
        words=words,
        lead=lead,
        lead_hit=q.answerable and _holds(lead, q.answers),
    )


def _holds(lead: str, answers: Sequence[str]) -> bool:
    """A lead is right when it holds a gold answer or is held by one ("19th century" in "late 19th century")."""
    short = metrics.normalize_answer(lead)
    return bool(short) and (metrics.contains_answer(lead, answers)
                            or any(f" {short} " in f" {metrics.normalize_answer(g)} " for g in answers))


def summarise(scored: Sequence[Scored]) -> dict[str, Any]:
    def mean(flags: Sequence[bool | int]) -> float | None:
        return round(float(np.mean(flags)), 4) if flags else None

    ans = [s for s in scored if s.kind == "answerable"]
    answered = [s for s in ans if not s.abstained and s.lead is not None]
    una = [s for s in scored if s.kind == "unanswerable"]
    off = [s for s in scored if s.kind == "off_topic"]
    return {
        "answerable": len(ans),
        "hit_at_1": mean([s.hit1 for s in ans]),
        "answer_hit": mean([s.answer_hit for s in ans]),
        "recall_at_5": mean([s.recall5 for s in ans]),
        "wrongly_abstained": mean([s.abstained for s in ans]),
        "own_article": mean([s.own_doc for s in ans]),
        "mean_cited": mean([s.cited for s in ans if not s.abstained]) if ans else None,
        "led": mean([bool(s.lead) for s in answered]),
        "lead_right": mean([s.lead_hit for s in answered if s.lead]),
        "unanswerable": len(una),
        "unanswerable_abstained": mean([s.abstained for s in una]),
        "off_topic": len(off),
        "off_topic_abstained": mean([s.abstained for s in off]),
    }


# ----- the protocol --------------------------------------------------------------------------------


def news_folds(n: int, k: int = NEWS_FOLDS) -> list[list[int]]:
    """Article ``i`` in fold ``i mod k``.

    >>> news_folds(6, 4)
    [[0, 4], [1, 5], [2], [3]]
    """
    k = max(1, min(k, n))
    return [list(range(f, n, k)) for f in range(k)]


def _ask(pipe: Pipeline, q: Question, doc_id: str, kind: str,
         history: Sequence[Turn] = (), doc_ids: Sequence[str] | None = None) -> Scored:
    answer = pipe.ask(q.text, list(history), llm="extractive", doc_ids=doc_ids)
    ranked = [h.sentence.text for h in pipe.retrieve(q.text, 10, doc_ids=doc_ids).hits]
    return score_answer(kind, q, answer, ranked, doc_id)


def _baseline(index: SentenceIndex, dense: Any, embedder: CachingEmbedder, q: Question, doc_id: str,
              allowed: set[int] | None = None) -> tuple[Scored, Scored]:
    """BM25's and dense retrieval's top sentences as answers."""
    lex = index.lexical.plain_scores(q.text)
    order_lex = [int(r) for r in np.argsort(-lex, kind="stable")[:200] if allowed is None or int(r) in allowed][:10]
    _, ids = dense.search(embedder.encode([q.text]), min(200, len(index)))
    order_dense = [int(r) for r in ids[0] if r >= 0 and (allowed is None or int(r) in allowed)][:10]
    out = []
    for order in (order_lex, order_dense):
        texts = [index.sentences[r].text for r in order]
        first = texts[0] if texts else ""
        own = bool(order) and index.sentences[order[0]].doc_id == doc_id
        hit = q.answerable and metrics.contains_answer(first, q.answers)
        out.append(Scored("answerable", False, hit, hit, any(metrics.contains_answer(t, q.answers) for t in texts[:5]),
                          own, 1, len(first.split())))
    return out[0], out[1]


def run_news(
    path: Path,
    embedder: CachingEmbedder,
    settings: Settings,
    *,
    extras: Sequence[Path] = (),
    conversations: Path | None = None,
    squad: Sequence[Article] = (),
    cfg: RetrievalConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The news protocol (module docstring); ``squad`` articles join every fold's training data."""
    cfg = cfg or RetrievalConfig()
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    articles = load_news(path, extras)
    folds = news_folds(len(articles))
    fold_of = {a: f for f, fold in enumerate(folds) for a in fold}
    say(f"news: {len(articles)} articles, {sum(len(a.questions) for a in articles)} questions, {len(folds)} folds")
    harness = Harness([*articles, *squad], embedder, cfg)
    n_news = len(articles)
    squad_folds = [[n_news + i for i in fold] for fold in make_folds(len(squad))] if squad else []
    records = harness.collect([*folds, *squad_folds])
    weights: list[ScorerWeights] = []
    for f in range(len(folds)):
        train = [r for r in records if r.article >= n_news or fold_of[r.article] != f]
        weights.append(fit_weights(train, harness, cfg))
        say(f"news: fitted fold {f + 1}/{len(folds)}")
    partner = off_topic_partners(folds)

    def pipe_for(index: SentenceIndex, f: int) -> Pipeline:
        return Pipeline(index, settings=settings, embedder=embedder, generator=ExtractiveGenerator(),
                        retrieval=replace(cfg, weights=weights[f]))

    per_article: list[Scored] = []
    base_bm25: list[Scored] = []
    base_dense: list[Scored] = []
    for i, a in enumerate(articles):
        index = harness.stores[i]
        pipe = pipe_for(index, fold_of[i])
        dense = dense_baseline(index)
        for q in a.questions:
            kind = "answerable" if q.answerable else "unanswerable"
            per_article.append(_ask(pipe, q, a.title, kind))
            if q.answerable:
                b, d = _baseline(index, dense, embedder, q, a.title)
                base_bm25.append(b)
                base_dense.append(d)
        if i in partner:
            per_article.extend(_ask(pipe, q, a.title, "off_topic") for q in articles[partner[i]].questions)
    say("news: per-article questions asked")

    library = FaissIndex.build([a.document() for a in articles], embedder)
    lib_dense = dense_baseline(library)
    lib: list[Scored] = []
    lib_bm25: list[Scored] = []
    lib_dense_scored: list[Scored] = []
    for f in range(len(folds)):
        pipe = pipe_for(library, f)
        for i in folds[f]:
            a = articles[i]
            for q in a.questions:
                lib.append(_ask(pipe, q, a.title, "answerable" if q.answerable else "unanswerable"))
                if q.answerable:
                    b, d = _baseline(library, lib_dense, embedder, q, a.title)
                    lib_bm25.append(b)
                    lib_dense_scored.append(d)
    say("news: library questions asked")
    result: dict[str, Any] = {
        "dataset": str(path),
        "format": "news-qa",
        "extras": [str(p) for p in extras],
        "articles": len(articles),
        "folds": len(folds),
        "squad_in_training": len(squad),
        "targets": TARGETS,
        "systems": {
            "per_article": summarise(per_article),
            "per_article_bm25": summarise(base_bm25),
            "per_article_dense": summarise(base_dense),
            "library": summarise(lib),
            "library_bm25": summarise(lib_bm25),
            "library_dense": summarise(lib_dense_scored),
        },
    }
    if conversations is not None:
        result["conversations"] = _conversations(load_conversations(conversations), articles, harness, folds,
                                                 pipe_for)
        say("news: conversations asked")
    return result


def _conversations(
    convs: Sequence[Conversation], articles: Sequence[Article], harness: Harness, folds: Sequence[Sequence[int]],
    pipe_for: Callable[[SentenceIndex, int], Pipeline],
) -> dict[str, Any]:
    """Follow-up turns over an index of the conversation's articles, with the history and without it."""
    by_id = {a.title: i for i, a in enumerate(articles)}
    fold_of = {a: f for f, fold in enumerate(folds) for a in fold}
    with_history: list[bool] = []
    without: list[bool] = []
    first_turns: list[bool] = []
    unanswered: list[bool] = []
    for conv in convs:
        idx = [by_id[d] for d in conv.doc_ids if d in by_id]
        if not idx:
            continue
        index = FaissIndex.build([articles[i].document() for i in idx],
                                 harness.embedder)
        pipe = pipe_for(index, fold_of[idx[0]])
        history: list[Turn] = []
        for t, q in enumerate(conv.turns):
            answer = pipe.ask(q.text, history, llm="extractive")
            ok = not answer.abstained and bool(answer.citations) and metrics.contains_answer(
                " ".join(c.text for c in answer.citations[:MAX_CITED_SENTENCES]), q.answers)
            if not q.answerable:  # a follow-up the articles do not answer: it should abstain
                (unanswered if t else first_turns).append(answer.abstained)
            elif t == 0:
                first_turns.append(ok)
            else:
                with_history.append(ok)
                alone = pipe.ask(q.text, llm="extractive")
                without.append(not alone.abstained and bool(alone.citations) and metrics.contains_answer(
                    " ".join(c.text for c in alone.citations[:MAX_CITED_SENTENCES]), q.answers))
            history += [Turn("user", q.text), Turn("assistant", answer.text)]

    def mean(xs: Sequence[bool]) -> float | None:
        return round(float(np.mean(xs)), 4) if xs else None

    return {"conversations": len(convs), "first_turns": len(first_turns), "first_turn_hit": mean(first_turns),
            "follow_ups": len(with_history), "follow_up_hit_with_history": mean(with_history),
            "follow_up_hit_without_history": mean(without), "unanswerable_follow_ups": len(unanswered),
            "unanswerable_follow_ups_abstained": mean(unanswered)}


def report(result: dict[str, Any]) -> str:
    """The table: per article and library, the product beside BM25 and dense."""
    head = ["system", "n", "hit@1", "answer-hit", "recall@5", "wrongly abst.", "unans. abst.", "off-topic abst.",
            "own article", "leads", "lead right"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    labels = {
        "per_article": "qa, each article its own index (held-out folds)",
        "per_article_bm25": "baseline: BM25, each article",
        "per_article_dense": "baseline: dense, each article",
        "library": "qa, all articles in one library (held-out folds)",
        "library_bm25": "baseline: BM25, library",
        "library_dense": "baseline: dense, library",
    }

    def fmt(v: object) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    for key, s in result["systems"].items():
        row = [labels.get(key, key), s["answerable"], s["hit_at_1"], s["answer_hit"], s["recall_at_5"],
               s["wrongly_abstained"], s["unanswerable_abstained"], s["off_topic_abstained"], s["own_article"],
               s.get("led"), s.get("lead_right")]
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    conv = result.get("conversations")
    if conv:
        lines += ["", f"conversations: {conv['conversations']}; first turns hit {fmt(conv['first_turn_hit'])}; "
                      f"follow-ups ({conv['follow_ups']}) hit with history {fmt(conv['follow_up_hit_with_history'])}, "
                      f"without {fmt(conv['follow_up_hit_without_history'])}; unanswerable follow-ups "
                      f"({conv['unanswerable_follow_ups']}) abstained {fmt(conv['unanswerable_follow_ups_abstained'])}"]
    return "\n".join(lines)


def records_of(records: Sequence[Record], articles: Sequence[int]) -> list[Record]:
    """The records of some articles (for fitting on news folds)."""
    keep = set(articles)
    return [r for r in records if r.article in keep]
