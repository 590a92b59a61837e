"""Where the test data lives: the seed article, the bundled seed questions, the SQuAD excerpt.

Everything is inside this repository (``tests/data/README.md`` says where it comes from); nothing
is read from outside the checkout.
"""

from __future__ import annotations

from pathlib import Path

from qa.tools.eval.data import BUNDLED_SEED_QA, SeedQuestion, load_seed_qa

ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = ROOT / "seeds"
SEED_ID = "us-israel-un-ceasefire-resolution.txt"
SEED_FILE = SEEDS_DIR / SEED_ID
SQUAD_FILE = ROOT / "tests" / "data" / "squad-v2-dev.json"
GALLANT_Q = "Who stayed in Washington despite the cancellation?"
GALLANT = "Despite the cancellation, Israeli Defense Minister Yoav Gallant remained in Washington"


def seed_questions() -> list[SeedQuestion]:
    """The seed article's questions, as shipped with the package (``qa eval``'s default set)."""
    return load_seed_qa(BUNDLED_SEED_QA)
