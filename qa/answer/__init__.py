"""Stage 5: write the answer text from the retrieved sentences. The generator is the second swappable edge."""

from qa.answer.base import Generator
from qa.answer.extractive import ExtractiveGenerator
from qa.answer.select import Selection, fallback_notice, select_generator

__all__ = ["ExtractiveGenerator", "Generator", "Selection", "fallback_notice", "select_generator"]
