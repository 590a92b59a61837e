"""Local, private question answering over news articles, with answers that cite exact sentences.

>>> from qa import answer
>>> answer("Who stayed in Washington?").citations[0].text  # doctest: +SKIP
"""

from qa.errors import (
    ConfigError,
    DocumentError,
    IndexError_,
    InputError,
    LLMError,
    QAError,
)
from qa.ingest import read_document
from qa.pipeline import Pipeline, answer
from qa.types import Answer, Citation, Document, Hit, Retrieval, Sentence, Turn

__all__ = [
    "Answer",
    "Citation",
    "ConfigError",
    "Document",
    "DocumentError",
    "Hit",
    "IndexError_",
    "InputError",
    "LLMError",
    "Pipeline",
    "QAError",
    "Retrieval",
    "Sentence",
    "Turn",
    "answer",
    "read_document",
]
__version__ = "0.2.0"
