"""A tiny hand-made SQuAD 2.0 file for the evaluation harness (four articles, two paragraphs each).

Every answerable question shares its rare words with exactly one sentence, which holds the answer,
so BM25 gets all of them right (checked by hand); each article also has one unanswerable question.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARTICLES: list[tuple[str, list[str], list[tuple[str, str | None]]]] = [
    (
        "Volcanoes",
        [
            "Mount Etna is a volcano on the island of Sicily. It erupted violently in 1669. "
            "The lava flows of that eruption destroyed much of the town of Catania.",
            "Vesuvius buried Pompeii in the year 79. Pliny the Younger described the eruption in two letters.",
        ],
        [
            ("On which island is the volcano Mount Etna?", "Sicily"),
            ("Which town did the lava flows destroy?", "Catania"),
            ("Who described the eruption in two letters?", "Pliny the Younger"),
            ("How tall is Mount Etna?", None),
        ],
    ),
    (
        "Coffee",
        [
            "Coffee was first cultivated in Yemen. Arabica beans grow best at high altitudes. "
            "Brazil is the largest producer of coffee today.",
            "Espresso was invented in Italy in 1884. Baristas press finely ground beans.",
        ],
        [
            ("Where was coffee first cultivated?", "Yemen"),
            ("Which country is the largest producer of coffee?", "Brazil"),
            ("In which year was espresso invented?", "1884"),
            ("Who invented the cappuccino?", None),
        ],
    ),
    (
        "Railways",
        [
            "The Stockton and Darlington Railway opened in 1825. George Stephenson engineered the line.",
            "Steam locomotives were replaced by diesel engines in the 1960s. Electric trains now run on many routes.",
        ],
        [
            ("When did the Stockton and Darlington Railway open?", "1825"),
            ("Who engineered the line?", "George Stephenson"),
            ("What replaced steam locomotives?", "diesel engines"),
            ("How fast were the first trains?", None),
        ],
    ),
    (
        "Chess",
        [
            "Chess originated in India as chaturanga. The queen became the strongest piece in the 15th century.",
            "Garry Kasparov lost to the computer Deep Blue in 1997. Magnus Carlsen became world champion in 2013.",
        ],
        [
            ("In which country did chess originate?", "India"),
            ("Which computer did Garry Kasparov lose to?", "Deep Blue"),
            ("When did Magnus Carlsen become world champion?", "2013"),
            ("Who invented the chess clock?", None),
        ],
    ),
]
COUNTS = {"answerable": 12, "unanswerable": 4, "off_topic": 16}
FOLDS = [["Volcanoes", "Railways"], ["Coffee", "Chess"]]


def write_squad(path: Path) -> Path:
    """Write ``ARTICLES`` as a SQuAD 2.0 JSON file at ``path``."""
    data: list[dict[str, Any]] = []
    for title, paragraphs, questions in ARTICLES:
        paras: list[dict[str, Any]] = [{"context": p, "qas": []} for p in paragraphs]
        for i, (q, answer) in enumerate(questions):
            ctx = next((j for j, p in enumerate(paragraphs) if answer and answer in p), 0)
            row: dict[str, Any] = {"id": f"{title}-{i}", "question": q, "is_impossible": answer is None}
            row["answers"] = [{"text": answer, "answer_start": paragraphs[ctx].index(answer)}] if answer else []
            paras[ctx]["qas"].append(row)
        data.append({"title": title, "paragraphs": paras})
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path
