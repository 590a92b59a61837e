"""Exporting a sentence-transformers model to ONNX (once per machine), optionally int8-quantized."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.embed.base import normalize
from qa.embed.sbert import resolve_model_path
from qa.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Encodes texts with the export in a folder: how an export is checked before it is published.
ExportCheck = Callable[[Path, Sequence[str]], "NDArray[np.float32]"]

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


def export_dir(model: str, *, cache_dir: Path, quantize: bool = False) -> Path:
    """The cache folder holding the ONNX export of ``model`` (it may not exist yet)."""
    path = resolve_model_path(model)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rsplit("/", 1)[-1])[:60] or "model"
    kind = "int8" if quantize else "fp32"
    return cache_dir / "onnx" / f"{slug}-{kind}-{_fingerprint(model, path, quantize)}"


def export_onnx(model: str, target: Path, *, check: ExportCheck, quantize: bool = False) -> Path:
    """Export ``model`` (tokenizer, transformer, pooling, normalisation) to ``target`` with torch.onnx.

    Runs once per model and machine; it needs torch, the query path afterwards does not.
    The export is checked against ``SentenceTransformer.encode`` before it is published (``check``
    encodes with the export in a folder, as the runtime that will use it does), and it
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
        got = check(tmp, list(_PARITY_TEXTS))
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
