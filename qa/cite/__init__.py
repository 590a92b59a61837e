"""Stage 6: turn generated text into an ``Answer`` whose citations resolve to exact, checked sentences."""

from qa.cite.build import build_answer
from qa.cite.checker import ClaimModel, Verdict, check_claim, judge
from qa.cite.claims import is_abstention, split_claims
from qa.cite.evidence import ClaimChecker
from qa.cite.markers import cited_numbers, find_markers, neutralize, parse_numbers, strip_markers

__all__ = [
    "ClaimChecker",
    "ClaimModel",
    "Verdict",
    "build_answer",
    "check_claim",
    "cited_numbers",
    "find_markers",
    "is_abstention",
    "judge",
    "neutralize",
    "parse_numbers",
    "split_claims",
    "strip_markers",
]
