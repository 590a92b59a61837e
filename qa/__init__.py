"""Local, private question answering over news articles, with answers that cite exact sentences.

>>> from qa import answer
>>> answer("Who stayed in Washington?").citations[0].text  # doctest: +SKIP
"""

from qa.errors import QAError
from qa.pipeline import Pipeline, answer
from qa.types import Answer, Citation, Document, Hit, Sentence, Turn

__all__ = ["Answer", "Citation", "Document", "Hit", "Pipeline", "QAError", "Sentence", "Turn", "answer"]
__version__ = "0.1.0"
