"""``qa eval [DATASET]``: measure retrieval, answers and abstention on SQuAD 2.0, news QA or the seed-QA set,
the claim check on a claims file (``qa.tools.eval.claims_run`` describes that protocol), or article
extraction on a folder in the article-extraction benchmark's format (``qa.tools.eval.extraction``).

News protocol: see ``qa.tools.eval.news`` (real news articles with quiz questions, each article alone
and all in one library, through the real pipeline, held out by folds).

SQuAD protocol. Each article is one document (its paragraphs joined as lines, as a news article's
paragraphs are) in its own index, and every question is asked of its own article. The articles are
split into folds (article *i* goes to fold *i mod K*; K = 4 for 8 articles, two articles a fold).
For each fold the scorers and the abstention models are fitted on the other folds and applied to
this one, so every "held-out" figure comes from articles the weights never saw. Off-topic questions
are simulated by asking each article the questions of the other article in its fold (held out too).
Baselines run in the same process on the same sentences: BM25 over sentences, plain dense retrieval
(the same embedder, exact FAISS inner product over single sentences), and their reciprocal-rank
fusion. Articles of ``--train`` files (news) join every fold's training data. The shipped weights are
fitted on all articles: ``qa eval SQUAD --train NEWS --extra EXTRA --fit`` rewrites
``qa/retrieve/weights.json``.

Seed-QA protocol: the real pipeline over ``seeds/``; an answerable question's first citation must
contain one of its ``support`` substrings, an unanswerable one must abstain.

Embeddings are computed once per run (``CachingEmbedder``). The rerank needs token embeddings,
which the product's embedder declares (``can_encode_tokens``); without them stage 1 is measured.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from qa.cite.checker import WEIGHTS_FILE as CLAIM_WEIGHTS_FILE
from qa.config import Settings, resolve
from qa.embed import Embedder
from qa.errors import MissingFileError, QAError
from qa.retrieve.scorer import WEIGHTS_FILE
from qa.tools.eval.claims_report import claims_report
from qa.tools.eval.claims_run import run_claims
from qa.tools.eval.data import BUNDLED_SEED_QA, Article, EvalDataError, is_claims_file, load_squad
from qa.tools.eval.embedder import eval_embedder
from qa.tools.eval.extraction import extraction_report, is_benchmark, run_extraction
from qa.tools.eval.news import is_news_file, load_news, run_news
from qa.tools.eval.news import report as news_report
from qa.tools.eval.report import report, write_json
from qa.tools.eval.run import run_seed_qa, run_squad


def _detect(path: Path) -> str:
    if is_benchmark(path):
        return "article-extraction"
    if not path.is_file():
        raise MissingFileError(str(path))
    if path.suffix.lower() != ".jsonl":
        return "squad2"
    if is_claims_file(path):
        return "claims"
    return "news-qa" if is_news_file(path) else "seed-qa"


def _training(paths: Sequence[str], extras: Sequence[Path]) -> tuple[list[Article], list[str]]:
    """Articles of training-only files (SQuAD JSON or news-QA JSON lines, with their extra questions)."""
    articles: list[Article] = []
    for raw in paths:
        path = Path(raw)
        kind = _detect(path)
        if kind not in ("squad2", "news-qa"):
            raise EvalDataError(raw, "training files are SQuAD 2.0 JSON or news-QA JSON lines")
        mine = list(extras) if kind == "news-qa" else []
        articles += load_news(path, mine) if kind == "news-qa" else load_squad(path)
    return articles, [Path(p).name for p in paths]


def main(
    dataset: str | None = None, json_out: str | None = None, *, fit: bool = False,
    embedder: Embedder | None = None, settings: Settings | None = None, train: Sequence[str] = (),
    extras: Sequence[str] = (), conversations: str | None = None, store: str | None = None,
) -> int:
    """Run the protocol that matches the file (default: the bundled seed questions), print the table,
    and optionally write JSON. ``train`` files join every fold's training data; ``extras`` are extra
    questions for news articles; with ``fit`` the weights fitted on everything are written."""
    settings = settings or resolve()
    path = Path(dataset) if dataset else BUNDLED_SEED_QA
    kind = _detect(path)
    if fit and kind not in ("squad2", "claims"):
        raise EvalDataError(str(path), "weights are fitted on SQuAD or claims files (news files join with --train)")
    if store is not None and kind != "squad2":
        raise EvalDataError(str(path), "--store is measured on a SQuAD 2.0 file (each article's index in the store)")
    if kind == "article-extraction":
        extraction = run_extraction(path)
        print(extraction_report(extraction))
        if json_out:
            write_json(json_out, extraction)
        return 0
    extra_paths = [Path(e) for e in extras]
    train_articles, train_names = _training(train, extra_paths)
    emb, note = eval_embedder(settings, embedder)
    out = CLAIM_WEIGHTS_FILE if kind == "claims" else WEIGHTS_FILE
    if kind == "seed-qa":
        result = run_seed_qa(path, emb, settings, token_note=note)
        print(report(result))
    elif kind == "news-qa":
        result = run_news(path, emb, settings, extras=extra_paths, squad=train_articles,
                          conversations=Path(conversations) if conversations else None)
        print(news_report(result))
    elif kind == "claims":
        result = run_claims(path, emb, settings, token_note=note, fit_out=out if fit else None)
        print(claims_report(result))
    else:
        result = run_squad(path, emb, token_note=note, fit_out=out if fit else None,
                           train=train_articles, train_names=train_names, store=store)
        print(report(result))
    if fit:
        print(f"wrote the weights fitted on all of {path.name} to {out}")
    if json_out:
        write_json(json_out, result)
    return 0


def cli(argv: Sequence[str] | None = None, prog: str = "qa eval") -> int:
    """``qa eval [DATASET] [--train FILE]... [--extra FILE]... [--conversations FILE] [--json OUT] [--fit]``:
    errors become messages and exit codes here."""
    p = argparse.ArgumentParser(prog=prog, description="Measure retrieval and abstention, the claim check, or "
                                                       "article extraction; --fit refits the weights.")
    p.add_argument("dataset", nargs="?", help="a SQuAD 2.0 .json, news-QA, seed-QA or claims .jsonl file (default: "
                                              "the bundled seed-article questions), or an article-extraction "
                                              "benchmark folder (html/<key>.html.gz + ground-truth.json)")
    p.add_argument("--train", action="append", default=[], help="a SQuAD or news-QA file whose articles join "
                                                                "every fold's training data (repeatable)")
    p.add_argument("--extra", action="append", default=[], help="extra questions (JSON lines: doc_id, question, "
                                                                "answers, answerable) for news articles (repeatable)")
    p.add_argument("--conversations", help="multi-turn conversations over news articles (JSON lines)")
    p.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    p.add_argument("--store", help="milvus://HOST:PORT/PREFIX: keep each article's index in Milvus (SQuAD files)")
    p.add_argument("--fit", action="store_true", help=f"refit the shipped weights on all of the file: retrieval "
                                                      f"({WEIGHTS_FILE.name}) or the claim check "
                                                      f"({CLAIM_WEIGHTS_FILE.name})")
    args = p.parse_args(argv)
    try:
        return main(args.dataset, args.json_out, fit=args.fit, train=args.train, extras=args.extra,
                    conversations=args.conversations, store=args.store)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
