"""Evaluation data files: SQuAD 2.0 JSON and the seed-QA JSON lines, read into frozen records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qa.errors import InputError

#: The seed article's questions, shipped with the package so ``qa eval`` works anywhere.
BUNDLED_SEED_QA = Path(__file__).with_name("data") / "seed-qa.jsonl"


class EvalDataError(InputError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(
            f"Cannot evaluate {path}: {why}. Give a SQuAD 2.0 JSON file, a news-QA or a seed-QA .jsonl file."
        )


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
                articles.append(Article(title=title, text=text, questions=questions))
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


def load_seed_qa(path: Path) -> list[SeedQuestion]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
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
