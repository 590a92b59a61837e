"""The benchmark's corpora: real SQuAD sentences, their vectors (cached), and synthetic ones beyond them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.config import checkout_root
from qa.tools.bench.measure import COLD_QUESTION

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.index import TokenTable
    from qa.types import Document, Sentence

#: The SQuAD excerpt the tests use (CC BY-SA 4.0, see tests/data/README.md), when run from a checkout.
_root = checkout_root()
SQUAD = (_root / "tests" / "data" / "squad-v2-dev.json") if _root is not None else Path("squad-v2-dev.json")


def squad_documents(path: Path, articles: int | None = None) -> tuple[list[Document], list[tuple[str, str, int]]]:
    """SQuAD articles as documents (paragraphs joined as lines) and ``(question, doc_id, answer offset)``."""
    from qa.types import Document

    raw = json.loads(path.read_text(encoding="utf-8"))
    docs: list[Document] = []
    questions: list[tuple[str, str, int]] = []
    for article in raw["data"][:articles]:
        title = str(article["title"])
        offset = 0
        parts = []
        for para in article["paragraphs"]:
            context = str(para["context"])
            for qa in para["qas"]:
                if not qa.get("is_impossible") and qa.get("answers"):
                    questions.append((str(qa["question"]), title, offset + int(qa["answers"][0]["answer_start"])))
            parts.append(context)
            offset += len(context) + 1
        docs.append(Document(doc_id=title, text="\n".join(parts), source=str(path)))
    return docs, questions


def seed_documents() -> list[Document]:
    """The bundled seed article(s)."""
    from qa import config
    from qa.ingest import read_documents

    settings = config.resolve()
    return read_documents([settings.seeds_dir], max_bytes=settings.max_file_bytes)


def seed_questions() -> list[dict[str, Any]]:
    """The bundled seed questions (``qa eval``'s default set)."""
    from qa.tools.eval.data import BUNDLED_SEED_QA

    text = BUNDLED_SEED_QA.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def corpus(path: Path, articles: int | None) -> tuple[list[Document], list[tuple[str, str, int]]]:
    if path.is_file():
        return squad_documents(path, articles)
    docs = seed_documents()  # without the SQuAD file, the seed article(s) and no graded questions
    return docs, []


def base_corpus(
    squad: Path, cache_dir: Path
) -> tuple[list[str], NDArray[np.float32], list[str], TokenTable | None]:
    """Real sentences, their vectors and stored tokens from the product embedder, and real questions (cached)."""
    from qa.config import resolve
    from qa.embed import make_embedder
    from qa.index import TokenTable
    from qa.index.build import encode
    from qa.index.tokens import TokenCodec
    from qa.ingest import segment

    docs, questions = corpus(squad, None)
    texts = [s.text for d in docs for s in segment(d)]
    qtexts = [q for q, _, _ in questions] or [COLD_QUESTION]
    settings = resolve()
    embedder = make_embedder(settings=settings)
    key = hashlib.sha256(("\n".join(texts) + "\x00" + embedder.name + settings.embed_runtime).encode())
    stem = f"base-{key.hexdigest()[:16]}"
    cache = cache_dir / f"{stem}.npy"
    parts = ("ids", "codes", "spans")
    token_files = [cache_dir / f"{stem}-tokens-{part}.npy" for part in parts]
    codec_file = cache_dir / f"{stem}-tokens-codec.npz"
    tokens: TokenTable | None = None
    if cache.is_file() and codec_file.is_file() and all(p.is_file() for p in token_files):
        vectors = np.load(cache, allow_pickle=False)
        ids, codes, spans = (np.load(p, allow_pickle=False) for p in token_files)
        with np.load(codec_file, allow_pickle=False) as npz:
            codec = TokenCodec.from_arrays({name: npz[name] for name in npz.files})
        tokens = TokenTable(codec, [(ids, codes)], spans)
    else:
        vectors, tokens = encode(embedder, texts, progress=False)  # what ``qa index`` stores
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors, allow_pickle=False)
        if tokens is not None:
            tokens = tokens.packed()
            arrays: tuple[NDArray[Any], ...] = (tokens.blocks[0][0], tokens.blocks[0][1], tokens.spans)
            for p, arr in zip(token_files, arrays, strict=True):
                np.save(p, arr, allow_pickle=False)
            savez: Any = np.savez
            with codec_file.open("wb") as f:
                savez(f, allow_pickle=False, **tokens.codec.arrays())
    return texts, vectors, qtexts, tokens


def synthetic_corpus(
    n: int,
    texts: Sequence[str],
    vectors: NDArray[np.float32],
    *,
    per_doc: int = 20,
    seed: int = 0,
    tokens: TokenTable | None = None,
) -> tuple[list[Document], list[Sentence], NDArray[np.float32], TokenTable | None]:
    """``n`` sentences in documents of ``per_doc``: real ones while they last, synthetic beyond.

    Synthetic vectors are ``a·v_i + (1-a)·v_j + noise`` of two real sentence vectors (a in [0.5, 1]),
    normalised; synthetic texts have a real sentence's length in words drawn from the real word stream,
    and that sentence's stored tokens (a span into the real codes: the rerank's gather is real, the
    codes of a million sentences need not be held).
    """
    from qa.embed import normalize
    from qa.types import Document, Sentence

    rng = np.random.default_rng(seed)
    base = len(texts)
    token_rows = np.arange(min(n, base), dtype=np.int64)
    if n <= base:
        chosen = list(texts[:n])
        out = np.ascontiguousarray(vectors[:n], dtype=np.float32)
    else:
        words = np.array(" ".join(texts).split())
        lengths = np.array([max(1, len(t.split())) for t in texts])
        chosen = list(texts)
        extra = n - base
        source = rng.integers(0, base, extra)
        lens = lengths[source]
        starts = rng.integers(0, len(words), extra)
        pool = rng.integers(0, len(words), int(lens.sum()))
        pos = 0
        for length in lens.tolist():
            chosen.append(" ".join(words[pool[pos : pos + length]].tolist()) + ".")
            pos += length
        del starts
        token_rows = np.concatenate([token_rows, source.astype(np.int64)])
        out = np.empty((n, vectors.shape[1]), dtype=np.float32)
        out[:base] = vectors
        step = 100_000
        for lo in range(base, n, step):
            hi = min(n, lo + step)
            i = rng.integers(0, base, hi - lo)
            j = rng.integers(0, base, hi - lo)
            a = rng.uniform(0.5, 1.0, (hi - lo, 1)).astype(np.float32)
            noise = rng.normal(0.0, 0.03, (hi - lo, vectors.shape[1])).astype(np.float32)
            out[lo:hi] = normalize(a * vectors[i] + (1 - a) * vectors[j] + noise)
    docs: list[Document] = []
    sentences: list[Sentence] = []
    for d, lo in enumerate(range(0, n, per_doc)):
        doc_id = f"synthetic-{d:07d}"
        parts = chosen[lo : lo + per_doc]
        text = " ".join(parts)
        docs.append(Document(doc_id=doc_id, text=text, source="synthetic"))
        start = 0
        for k, part in enumerate(parts):
            sentences.append(Sentence(doc_id=doc_id, n=k, start=start, end=start + len(part), text=part))
            start += len(part) + 1
    return docs, sentences, out, (tokens.take(token_rows) if tokens is not None else None)



def plain_encoder() -> Callable[[list[str]], object]:
    """``SentenceTransformer.encode`` of the default model, as a user of sentence-transformers would call it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from qa.config import DEFAULT_EMBED_MODEL
    from qa.embed.sbert import resolve_model_path

    model = SentenceTransformer(resolve_model_path(DEFAULT_EMBED_MODEL), device="cpu")
    return lambda texts: model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
