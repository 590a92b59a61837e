"""A tiny claims file for ``qa eval``'s claims protocol, written on the fly: short articles written for this
project, each with a model-like text whose sentences are marked supported or not (by construction)."""

from __future__ import annotations

import json
from pathlib import Path

DATASETS = ("QAGS-CNNDM", "QAGS-XSum", "XSumFaith")

#: (article, [(sentence, supported), ...])
RECORDS: list[tuple[str, list[tuple[str, bool]]]] = [
    ("The council of Northbridge approved its budget on Tuesday by 23 votes to 19. The budget raises council "
     "tax by 4%. Council leader Ann Rees said three libraries would open in the spring.",
     [("The council approved the budget by 23 votes to 19.", True), ("Council tax will rise by 9%.", False)]),
    ("A storm closed the Severn bridge for six hours on Friday. Winds reached 80 miles per hour. Police "
     "advised drivers to use the M4 instead.",
     [("Winds of 80 miles per hour closed the bridge for six hours.", True)]),
    ("The museum in Eastford reopened after a two-year renovation. It now has a glass roof and a new cafe. "
     "Tickets cost 12 pounds for adults.",
     [("The museum reopened after renovation lasting two years.", True), ("Entry is free for children.", False)]),
    ("Striker Maria Lopes scored twice as Harbour City beat Riverside 3-1 on Saturday. Lopes has now scored "
     "15 goals this season. Riverside remain bottom of the league.",
     [("Maria Lopes scored two goals in a 3-1 win.", True), ("Riverside moved off the bottom of the table.", False)]),
    ("The airline Skyward cancelled 40 flights because of a pilots' strike. The strike is about pay. The "
     "union said talks would resume on Monday.",
     [("A pay strike by pilots led Skyward to cancel 40 flights.", True)]),
    ("A new hospital wing in Westmoor will add 120 beds. It cost 30 million pounds. The health minister "
     "opened it on Wednesday.",
     [("The wing adds 200 beds.", False), ("The health minister opened the wing.", True)]),
    ("Farmers in the valley reported the driest summer since 1976. Reservoirs are at 35% of capacity. A "
     "hosepipe ban starts next week.",
     [("Reservoirs are a third full and a hosepipe ban is coming.", True)]),
    ("The school in Millbrook will close in July because pupil numbers have fallen. Its 90 pupils will move "
     "to Oakfield. Parents have started a petition.",
     [("Millbrook school will close in July.", True), ("The school has 300 pupils.", False)]),
    ("Scientists at Dunmore University found a new species of frog in the rainforest. The frog is two "
     "centimetres long. It was named after a local guide.",
     [("A tiny frog species was discovered by Dunmore University scientists.", True),
      ("The frog was named after the university's president.", False)]),
    ("The ferry service to Isle Carrow will stop in October after 50 years. The operator lost money for "
     "three years. Islanders will rely on a weekly boat.",
     [("After fifty years the ferry will stop running in October.", True)]),
]


def write_claims(path: Path) -> Path:
    """Write the records as claims JSON lines (ids and datasets cycling over the three datasets)."""
    lines = []
    for i, (article, sentences) in enumerate(RECORDS):
        dataset = DATASETS[i % 3]
        lines.append(json.dumps({
            "id": f"{dataset.lower()}-{i:03d}",
            "article": article,
            "sentences": [{"text": t, "supported": ok, "votes": []} for t, ok in sentences],
            "source": {"dataset": dataset, **({"published_scores": {"entailment": 0.9 if i % 2 else 0.1}}
                                               if dataset == "XSumFaith" else {})},
        }))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
