"""The default embedder: the same model exported to ONNX and run by onnxruntime, without torch."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.config import DEFAULT_EMBED_MODEL
from qa.embed.base import Embedder, TokenVectors, normalize
from qa.embed.export import export_dir, export_onnx
from qa.embed.sbert import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from numpy.typing import NDArray


class OnnxEmbedder(Embedder):
    """The default embedder: the same model exported to ONNX, run by onnxruntime with a ``tokenizers`` tokenizer.

    Nothing here imports torch unless the export is missing from the cache (``export_dir``). Texts
    are sorted by token count and batched by a token budget, so short sentences do not pay for long
    ones, and batches run side by side on the available cores. With ``quantize`` the weights are
    int8 (``quantize_int8``); note that dynamic quantization scales activations per batch, so a
    sentence's int8 vector varies slightly (cosine > 0.999) with the batch it was encoded in.
    If the export cannot be made, it falls back to :class:`SentenceTransformerEmbedder` with a warning
    (which gives token embeddings too).
    """

    can_encode_tokens: ClassVar[bool] = True

    def __init__(
        self,
        model: str = DEFAULT_EMBED_MODEL,
        *,
        quantize: bool = False,
        cache_dir: Path | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 4096,
        threads: int | None = None,
        directory: Path | None = None,
    ) -> None:
        self._name = model
        self._quantize = quantize
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._max_batch_tokens = max_batch_tokens
        self._threads = threads or _cpu_count()
        self._directory = directory
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._meta: dict[str, Any] | None = None
        self._fallback: SentenceTransformerEmbedder | None = None
        self._recent = _Recent()

    @classmethod
    def from_dir(cls, directory: Path, *, name: str, threads: int | None = None) -> OnnxEmbedder:
        """Open an export folder as it is (no cache lookup, no export)."""
        return cls(name, directory=directory, threads=threads)

    @property
    def name(self) -> str:
        return self._name

    @property
    def runtime(self) -> str:
        """What actually encodes: ``onnx``, ``onnx-int8`` or ``torch`` (after a fallback)."""
        self._ensure()
        if self._fallback is not None:
            return "torch"
        return "onnx-int8" if self._quantize else "onnx"

    @property
    def directory(self) -> Path:
        """The export folder in use."""
        if self._directory is None:
            if self._cache_dir is None:
                raise ValueError("an OnnxEmbedder needs cache_dir (where exports live) or directory (an export)")
            self._directory = export_dir(self._name, quantize=self._quantize, cache_dir=self._cache_dir)
        return self._directory

    def _ensure(self) -> None:
        if self._session is not None or self._fallback is not None:
            return
        with self._lock:
            if self._session is not None or self._fallback is not None:
                return
            directory = self.directory
            if (directory / "meta.json").is_file():
                try:
                    self._open(directory)
                    return
                except Exception as exc:  # any failure to open the cached export (a truncated model): redo it
                    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    print(f"note: the cached ONNX export in {directory} is damaged ({detail}); exporting it again",
                          file=sys.stderr)
                    shutil.rmtree(directory, ignore_errors=True)
            if not (directory / "meta.json").is_file():
                try:
                    print(f"note: exporting the embedding model {self._name!r} to ONNX in {directory} (once)",
                          file=sys.stderr)
                    export_onnx(self._name, directory, quantize=self._quantize, check=self._check_export)
                except Exception as exc:  # any failure of the optional fast path: keep working on torch
                    print(f"warning: ONNX export failed ({exc}); embedding with torch instead", file=sys.stderr)
                    self._fallback = SentenceTransformerEmbedder(self._name)
                    return
            self._open(directory)

    def _check_export(self, directory: Path, texts: Sequence[str]) -> NDArray[np.float32]:
        """How a fresh export is checked before it is published: encode with it as this embedder would."""
        return OnnxEmbedder.from_dir(directory, name=self._name, threads=self._threads).encode(texts)

    def _open(self, directory: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(int(meta["max_seq_length"]))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # one thread per run; batches run side by side instead (MiniLM's matrices are too small for
        # intra-op threads to pay off, and spinning threads suffer most on a busy machine)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(directory / str(meta["onnx"])), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer
        self._meta = meta

    @property
    def dim(self) -> int:
        self._ensure()
        if self._fallback is not None:
            return self._fallback.dim
        assert self._meta is not None
        return int(self._meta["dim"])

    def _tokenize(self, texts: Sequence[str]) -> list[Any]:
        assert self._meta is not None
        items = [t.lower() for t in texts] if self._meta.get("lowercase") else list(texts)
        return list(self._tokenizer.encode_batch(items))

    def _run(
        self, encodings: Sequence[Any], outputs: list[str]
    ) -> tuple[list[NDArray[np.int64]], list[list[NDArray[np.float32]]]]:
        """Run the model over length-bucketed batches: the batches' rows, and each batch's outputs."""
        assert self._meta is not None
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        batches = token_batches(lengths, self._batch_size, self._max_batch_tokens)
        pad = int(self._meta.get("pad_id", 0))
        results: list[list[NDArray[np.float32]]] = [[] for _ in batches]

        def run(b: int) -> None:
            rows = batches[b]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows.tolist()):
                seq = encodings[j].ids
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
            results[b] = self._session.run(outputs, {"input_ids": ids, "attention_mask": mask})

        if len(batches) == 1 or self._threads == 1:
            for b in range(len(batches)):
                run(b)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(self._threads, len(batches))) as pool:
                list(pool.map(run, range(len(batches))))  # onnxruntime releases the GIL while it runs
        return batches, results

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self._ensure()
        if self._fallback is not None:
            return self._fallback.encode(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:
            hit = self._recent.get(texts[0])
            if hit is not None:
                return hit.copy()
        encodings = self._tokenize(texts)
        batches, results = self._run(encodings, ["embedding"])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, (vectors,) in zip(batches, results, strict=True):
            out[rows] = vectors
        return normalize(out)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Contextual token embeddings (unit rows) of each text's non-special tokens, with character offsets.

        The same contract as the torch model's ``output_value="token_embeddings"`` (``qa.retrieve``'s
        rerank uses it). A single text's sentence vector is kept too, so the ``encode`` of the same
        question that follows costs nothing.
        """
        self._ensure()
        if self._fallback is not None:
            return self._fallback.encode_tokens(texts)
        if not texts:
            return []
        vectors, out = self._encode_both(texts)
        if len(texts) == 1:
            self._recent.put(texts[0], vectors[:1])
        return out

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        """Sentence vectors and each text's token vectors from one pass of the model: at index time the
        rerank's tokens cost no second pass (the pooled vector is computed from them anyway)."""
        self._ensure()
        if self._fallback is not None:
            return self._fallback.encode_with_tokens(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        vectors, out = self._encode_both(texts, unit=False)  # stored per-row scaled: no need to normalise
        return vectors, [v for v, _ in out]

    def _encode_both(
        self, texts: Sequence[str], *, unit: bool = True
    ) -> tuple[NDArray[np.float32], list[tuple[NDArray[np.float32], NDArray[np.int64]]]]:
        encodings = self._tokenize(texts)
        batches, results = self._run(encodings, ["embedding", "token_embeddings"])
        sentence = np.zeros((len(texts), self.dim), dtype=np.float32)
        out: list[tuple[NDArray[np.float32], NDArray[np.int64]]] = [
            (np.zeros((0, self.dim), dtype=np.float32), np.zeros((0, 2), dtype=np.int64))
        ] * len(texts)
        for rows, (vectors, tokens) in zip(batches, results, strict=True):
            sentence[rows] = vectors
            for r, j in enumerate(rows.tolist()):
                offsets = np.asarray(encodings[j].offsets, dtype=np.int64).reshape(-1, 2)
                keep = offsets[:, 1] > offsets[:, 0]  # special tokens and padding have empty spans
                kept = tokens[r, : len(offsets)][keep]
                out[j] = (normalize(kept) if unit else kept, offsets[keep])
        return normalize(sentence), out


class _Recent:
    """A tiny thread-safe LRU of single-text sentence vectors."""

    def __init__(self, capacity: int = 64) -> None:
        self._items: dict[str, NDArray[np.float32]] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, text: str) -> NDArray[np.float32] | None:
        with self._lock:
            item = self._items.pop(text, None)
            if item is not None:
                self._items[text] = item
            return item

    def put(self, text: str, vector: NDArray[np.float32]) -> None:
        with self._lock:
            self._items.pop(text, None)
            self._items[text] = vector
            while len(self._items) > self._capacity:
                del self._items[next(iter(self._items))]


def token_batches(lengths: NDArray[np.int64], max_rows: int, max_tokens: int) -> list[NDArray[np.int64]]:
    """Length buckets: row indices sorted by length, cut so each batch pads to at most ``max_tokens``
    and no row is padded to more than 1.25× its length + 4 (few texts of mixed lengths: small batches).

    >>> [b.tolist() for b in token_batches(np.array([5, 1, 9, 2]), 2, 100)]
    [[1, 3], [0, 2]]
    >>> [b.tolist() for b in token_batches(np.array([50, 60, 70]), 8, 120)]
    [[0, 1], [2]]
    >>> [b.tolist() for b in token_batches(np.array([5, 30, 20, 21, 22, 23]), 8, 1000)]
    [[0], [2, 3, 4, 5], [1]]
    """
    order = np.argsort(lengths, kind="stable")
    batches: list[NDArray[np.int64]] = []
    start = 0
    while start < len(order):
        stop = start + 1  # lengths only grow along ``order``: the last row sets the padded width
        limit = 1.25 * int(lengths[order[start]]) + 4
        while stop < len(order) and stop - start < max_rows:
            width = int(lengths[order[stop]])
            if (stop - start + 1) * width > max_tokens or width > limit:
                break
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
