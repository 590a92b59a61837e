"""Stage 4: find the sentences that answer a question, and decide when none does.

1. **Candidates** (``candidates``): the union of the dense and BM25 top lists, plus the sentence
   after each list's best few, where answers that follow the matching sentence live.
2. **Stage 1** (``scorer``), a fitted linear scorer over cheap features (``features``): dense
   similarity of the sentence, its neighbours and its window; BM25 normalised by the question's IDF
   mass; IDF coverage; ranks; answer-type cues.
3. **Rerank** (``rerank``), late interaction over the stage-1 best: each question token matched to
   its most similar sentence token, weighted by the word's IDF, with MiniLM's token embeddings
   (stored at index time). It runs when the embedder declares ``can_encode_tokens``.
4. **Abstention**: a fitted logistic model over query-level evidence (``Retrieval.abstains``).

Follow-up questions are made standalone first (``followup``).
"""

from qa.retrieve import evidence, overview
from qa.retrieve.followup import standalone_query
from qa.retrieve.retriever import Retriever
from qa.retrieve.scorer import RetrievalConfig, ScorerWeights, default_weights

__all__ = [
           "RetrievalConfig",
           "Retriever",
           "ScorerWeights",
           "already_quoted",
           "default_weights",
           "evidence",
           "overview",
           "standalone_query",
]
