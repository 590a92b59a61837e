"""Evaluation data files: SQuAD 2.0 JSON and the seed-QA JSON lines, read into frozen records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.types import Document

#: The seed article's questions, shipped with the package so ``qa eval`` works anywhere.
BUNDLED_SEED_QA = Path(__file__).with_name("data") / "seed-qa.jsonl"


class EvalDataError(InputError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"Cannot evaluate {path}: {why}. Give a SQuAD 2.0 JSON file, a news-QA, seed-QA or "
                         "claims .jsonl file.")


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...]
    answerable: bool


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    questions: tuple[Question, ...]
    source: str = ""  # the file it came from: each source weighs the same in the abstention fit
    published: str | None = None  # the article's date (ISO 8601) when its row gives one, as a page's metadata would

    def document(self) -> Document:
        """The article as the product would index it: its text, and its date as metadata."""
        return Document(doc_id=self.title, text=self.text, published=self.published)


def load_squad(path: Path) -> list[Article]:
    """Articles of a SQuAD 2.0 file; paragraphs become lines of one document."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        articles: list[Article] = []
        for a in raw["data"]:
            paragraphs = [p for p in a["paragraphs"] if p["context"].strip()]
            text = "\n".join(" ".join(p["context"].split()) for p in paragraphs)
            questions = tuple(
                Question(
                    qid=str(q.get("id", f"{a['title']}-{i}")),
                    text=str(q["question"]).strip(),
                    answers=tuple(dict.fromkeys(str(x["text"]) for x in q.get("answers", []))),
                    answerable=not q.get("is_impossible", False) and bool(q.get("answers")),
                )
                for p in paragraphs
                for i, q in enumerate(p["qas"])
                if str(q["question"]).strip()
            )
            if text.strip():
                title = str(a.get("title", f"article-{len(articles)}"))
                articles.append(Article(title=title, text=text, questions=questions, source=path.name))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvalDataError(str(path), f"not SQuAD 2.0 JSON ({exc})") from exc
    if not articles:
        raise EvalDataError(str(path), "it holds no article")
    return articles


@dataclass(frozen=True)
class SeedQuestion:
    text: str
    answerable: bool
    answers: tuple[str, ...]
    support: tuple[str, ...]


def json_lines(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON-lines file; a line that is not JSON is an
    ``EvalDataError`` naming it ("line 3 is not ``what``")."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalDataError(str(path), f"line {n} is not {what} ({exc})") from exc
        yield n, row


def load_seed_qa(path: Path) -> list[SeedQuestion]:
    out = []
    for n, row in json_lines(path, "a seed-QA object"):
        try:
            out.append(
                SeedQuestion(
                    text=str(row["question"]),
                    answerable=bool(row["answerable"]),
                    answers=tuple(map(str, row.get("answers", []))),
                    support=tuple(map(str, row.get("support", []))),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalDataError(str(path), f"line {n} is not a seed-QA object ({exc})") from exc
    if not out:
        raise EvalDataError(str(path), "it holds no question")
    return out


# ----- claims: model-written sentences judged against their article --------------------------------

#: Dataset names by id prefix, for files whose records lack ``source.dataset``.
CLAIM_DATASETS = {"qags-cnndm": "QAGS-CNNDM", "qags-xsum": "QAGS-XSum", "xsumfaith": "XSumFaith"}


@dataclass(frozen=True)
class JudgedSentence:
    text: str
    supported: bool


@dataclass(frozen=True)
class ClaimRecord:
    """One model-written text about one article, sentence by sentence, each judged by people."""

    rid: str
    dataset: str
    article: str
    sentences: tuple[JudgedSentence, ...]
    entailment: float | None = None  # a published entailment score of the whole text, where the source has one


def is_claims_file(path: Path) -> bool:
    """Whether a ``.jsonl`` file holds claims records (``article`` and judged ``sentences``)."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return False
                return isinstance(row, dict) and "article" in row and "sentences" in row
    return False


def load_claims(path: Path) -> list[ClaimRecord]:
    out = []
    for n, row in json_lines(path, "a claims object"):
        try:
            rid = str(row["id"])
            source = row.get("source") or {}
            dataset = source.get("dataset") or next(
                (name for prefix, name in CLAIM_DATASETS.items() if rid.lower().startswith(prefix)), "other"
            )
            scores = source.get("published_scores") or {}
            out.append(ClaimRecord(
                rid=rid,
                dataset=str(dataset),
                article=str(row["article"]),
                sentences=tuple(JudgedSentence(str(s["text"]), bool(s["supported"])) for s in row["sentences"]),
                entailment=float(scores["entailment"]) if "entailment" in scores else None,
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalDataError(str(path), f"line {n} is not a claims object ({exc})") from exc
    if not out:
        raise EvalDataError(str(path), "it holds no record")
    return out


_DATED = re.compile(r"\bpublished (\d{4})[/-](\d{2})[/-](\d{2})\b")


def published_of(row: dict[str, Any]) -> str | None:
    """The article's date as ISO 8601: its ``published`` field, else the "published YYYY/MM/DD" that the
    source note of a RealTimeQA row gives (a web page's metadata would carry it; the quiz asks "in June 2022").

    >>> published_of({"source": "url https://x; published 2022/06/22"}), published_of({"published": "2022-06-22"})
    ('2022-06-22', '2022-06-22')
    """
    if row.get("published"):
        return str(row["published"])
    found = _DATED.search(str(row.get("source", "")))
    return "-".join(found.groups()) if found else None
