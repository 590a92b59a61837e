"""Building an index's rows: segment and embed what changed, reuse the rest (any backend)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.embed import Embedder
from qa.index.base import SentenceIndex
from qa.index.manifest import content_hash
from qa.index.tokens import TokenCodec, TokenTable
from qa.ingest import segment
from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray


CODEC_SAMPLE_TEXTS = 4096  # sentences whose tokens fit the codebook of a large indexing run (~120k tokens)


@dataclass(frozen=True)
class Rows:
    """The rows of a new index in order: the documents, their sentences, vectors and token codes.

    ``fresh`` holds the vectors of the newly embedded sentences only; when ``appends`` is true the
    previous index's rows come first, unchanged and in place, so a backend can grow its structures
    by ``fresh`` instead of rebuilding them.
    """

    documents: tuple[Document, ...]
    sentences: tuple[Sentence, ...]
    vectors: NDArray[np.float32]
    tokens: TokenTable | None
    fresh: NDArray[np.float32]
    appends: bool


def plan_rows(
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    previous: SentenceIndex | None = None,
    progress: bool = False,
    remove: Collection[str] = (),
) -> Rows:
    """Segment and embed ``documents``, reusing the vectors (and token codes) of any document of
    ``previous`` whose content is unchanged; documents with the id of an old one replace it, and the
    old documents named in ``remove`` are left out."""
    reuse = previous if previous is not None and previous.model == embedder.name else None
    by_id: dict[str, Document] = dict(reuse.documents) if reuse is not None else {}
    for doc_id in remove:
        by_id.pop(doc_id, None)
    for doc in documents:
        by_id[doc.doc_id] = doc
    sentences: list[Sentence] = []
    runs: list[tuple[bool, Sequence[int]]] = []  # per document: (reused?, its rows in the old index or in fresh)
    new_texts: list[str] = []
    for doc in by_id.values():
        old_doc = reuse.documents.get(doc.doc_id) if reuse is not None else None
        # the very object of the old index is unchanged without hashing its text again
        if old_doc is not None and (old_doc is doc or content_hash(old_doc.text) == content_hash(doc.text)):
            assert reuse is not None
            rows = reuse.rows_of(doc.doc_id)
            sentences.extend(reuse.sentences[r] for r in rows)
            runs.append((True, rows))
        else:
            pieces = segment(doc)
            runs.append((False, range(len(new_texts), len(new_texts) + len(pieces))))
            sentences.extend(pieces)
            new_texts.extend(p.text for p in pieces)
    codec = reuse.tokens.codec if reuse is not None and reuse.tokens is not None else None  # shared codebook
    fresh, fresh_tokens = (
        encode(embedder, new_texts, progress=progress, codec=codec) if new_texts else (None, None)
    )
    dim = fresh.shape[1] if fresh is not None else (reuse.dim if reuse is not None else embedder.dim)
    vectors = np.empty((len(sentences), dim), dtype=np.float32)
    pos = 0
    for reused, rows in runs:
        source = reuse.vectors if reused and reuse is not None else fresh
        if rows and source is not None:
            vectors[pos : pos + len(rows)] = source[list(rows)]
        pos += len(rows)
    return Rows(
        documents=tuple(by_id.values()),
        sentences=tuple(sentences),
        vectors=vectors,
        tokens=_tokens(runs, reuse.tokens if reuse is not None else None, fresh_tokens),
        fresh=fresh if fresh is not None else np.zeros((0, dim), np.float32),
        appends=reuse is not None and extends(reuse, sentences),
    )


def extends(old: SentenceIndex, sentences: Sequence[Sentence]) -> bool:
    """Whether ``sentences`` are ``old``'s own, in place, then new ones: its indexes can grow instead of
    being rebuilt."""
    n = len(old)
    return len(sentences) >= n and all(a is b for a, b in zip(sentences[:n], old.sentences, strict=True))


def _tokens(
    runs: Sequence[tuple[bool, Sequence[int]]], old: TokenTable | None, fresh: TokenTable | None
) -> TokenTable | None:
    """The rerank's stored tokens in the new row order, sharing the blocks they come from (no codes are
    copied); None when some rows have none (an index built before tokens were stored, or an embedder
    without them): the rerank then encodes on the fly."""
    if not runs or any((old if reused else fresh) is None for reused, _ in runs):
        return None
    blocks = (old.blocks if old is not None else []) + (fresh.blocks if fresh is not None else [])
    names = (old.names if old is not None else []) + (fresh.names if fresh is not None else [])
    checks = (old.checks if old is not None else []) + (fresh.checks if fresh is not None else [])
    codec = fresh.codec if fresh is not None else old.codec if old is not None else None
    assert codec is not None and (old is None or old.codec is codec)  # fresh codes use the old codebook
    shift = len(old.blocks) if old is not None else 0
    spans = []
    for reused, rows in runs:
        table = old if reused else fresh
        assert table is not None
        part = table.spans[list(rows)].reshape(-1, 3)
        if not reused:
            part[:, 0] += shift
        spans.append(part)
    return TokenTable(codec, blocks, np.concatenate(spans), names, checks)


def encode(
    embedder: Embedder, texts: list[str], *, progress: bool, codec: TokenCodec | None = None
) -> tuple[np.ndarray, TokenTable | None]:
    """Sentence vectors, and the rerank's token codes when the embedder gives them in the same pass
    (encoded with ``codec``, the index's codebook, or a new one fitted on these texts' tokens)."""
    both = embedder.can_encode_tokens

    def run(chunk: list[str]) -> tuple[np.ndarray, TokenTable | None]:
        if not both:
            return embedder.encode(chunk), None
        vectors, tokens = embedder.encode_with_tokens(chunk)
        return vectors, TokenTable.quantize(tokens, vectors.shape[1], codec)

    if not progress or len(texts) < 512:
        return run(texts)
    if both and codec is None:  # every chunk's codes share one codebook: fit it on a seeded sample first
        pick = np.random.default_rng(1234).choice(len(texts), min(len(texts), CODEC_SAMPLE_TEXTS), replace=False)
        codec = TokenCodec.fit(np.concatenate(embedder.encode_with_tokens([texts[i] for i in sorted(pick)])[1]))
    from tqdm import tqdm

    # one length sort for the whole corpus, so each chunk is a length bucket (little padding); order restored
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    tables: list[TokenTable] = []
    batch = 1024
    with tqdm(total=len(texts), unit="sent", desc="embedding") as bar:
        for lo in range(0, len(texts), batch):
            rows = order[lo : lo + batch]
            vectors, table = run([texts[i] for i in rows])
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            if table is not None:
                tables.append(table)
            bar.update(len(rows))
    assert out is not None
    if not both:
        return out, None
    inverse = np.empty(len(texts), dtype=np.int64)
    inverse[np.array(order, dtype=np.int64)] = np.arange(len(texts))
    joined = tables[0]
    for table in tables[1:]:
        joined = joined.extend(table)  # shares the chunks' blocks; one copy below, into row order
    return out, joined.take(inverse).packed()
