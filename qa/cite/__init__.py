"""Stage 6: turn generated text into an ``Answer`` whose citations resolve to exact, checked sentences."""

from qa.cite.build import build_answer
from qa.cite.claims import is_abstention, split_claims
from qa.cite.markers import cited_numbers, find_markers, neutralize, parse_numbers, strip_markers

__all__ = [
    "build_answer",
    "cited_numbers",
    "find_markers",
    "is_abstention",
    "neutralize",
    "parse_numbers",
    "split_claims",
    "strip_markers",
]
