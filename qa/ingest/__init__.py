"""Stage 1: read articles and cut them into sentences that are exact slices of their text."""

from qa.ingest.read import (
    SUPPORTED_SUFFIXES,
    document_from_bytes,
    expand_paths,
    read_document,
    read_documents,
)
from qa.ingest.segment import SEGMENTER_NAME, segment

__all__ = [
    "SEGMENTER_NAME",
    "SUPPORTED_SUFFIXES",
    "document_from_bytes",
    "expand_paths",
    "read_document",
    "read_documents",
    "segment",
]
