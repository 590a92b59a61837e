"""Stage 1: read articles and cut them into sentences that are exact slices of their text."""

from qa.ingest.header import document_label, header_spans
from qa.ingest.read import (
    SUPPORTED_SUFFIXES,
    document_from_bytes,
    expand_paths,
    file_id,
    read_document,
    read_documents,
)
from qa.ingest.segment import SEGMENTER_NAME, segment

__all__ = [
    "SEGMENTER_NAME",
    "SUPPORTED_SUFFIXES",
    "document_from_bytes",
    "document_label",
    "expand_paths",
    "file_id",
    "header_spans",
    "read_document",
    "read_documents",
    "segment",
]
