"""Indexes for the fault tests, and the child processes that write them until they are killed.

``python -m helpers.faults save-forever TARGET START SOURCE...`` loads the indexes saved in the SOURCE
folders and saves them into TARGET in turn (save number ``i`` writes source ``i % len(SOURCES)``),
printing ``saved i`` after each, until it is killed. ``python -m helpers.faults save-limited SOURCE
TARGET BYTES`` saves once with the process's file size limit at BYTES, so a write fails partway, as on a
full disk.
"""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import sys
from pathlib import Path

import numpy as np

from helpers.fakes import TokenHashEmbedder
from qa.index import FaissIndex, TokenTable
from qa.index.lexical_io import saved_arrays
from qa.ingest import SEGMENTER_NAME
from qa.types import Document, Sentence

WORDS = (
    "council vote resolution ceasefire market bank rates bonds gold river train city harbour bridge toll "
    "minister delegation meeting offensive refuge hostages release prisoner exchange abstained vetoed "
    "committee budget report storm flood election court ruling appeal museum festival"
).split()


def make_state(sentences: int, seed: int, per_doc: int = 40) -> FaissIndex:
    """A deterministic index of ``sentences`` synthetic sentences with stored token codes (no segmenter run)."""
    rng = np.random.default_rng(seed)
    embedder = TokenHashEmbedder()
    docs: list[Document] = []
    rows: list[Sentence] = []
    for d in range(0, sentences, per_doc):
        parts = [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 13)))).capitalize() + "."
                 for _ in range(min(per_doc, sentences - d))]
        doc_id = f"state-{seed}-doc-{d // per_doc:05d}"
        docs.append(Document(doc_id, " ".join(parts), source="fault-test"))
        start = 0
        for k, part in enumerate(parts):
            rows.append(Sentence(doc_id, k, start, start + len(part), part))
            start += len(part) + 1
    vectors, tokens = embedder.encode_with_tokens([s.text for s in rows])
    return FaissIndex(docs, rows, vectors, model=embedder.name, segmenter=SEGMENTER_NAME,
                      chunking={"unit": "sentence", "context": 1}, tokens=TokenTable.quantize(tokens, embedder.dim))


def fingerprint(index: FaissIndex) -> str:
    """Everything a search reads: documents, sentences, vectors, the FAISS index, token codes, BM25 arrays."""
    h = hashlib.sha256()
    for d in index.documents.values():
        h.update(json.dumps([d.doc_id, d.text, d.source]).encode())
    h.update(json.dumps([(s.doc_id, s.n, s.start, s.end) for s in index.sentences]).encode())
    h.update(np.ascontiguousarray(index.vectors).tobytes())
    h.update(np.ascontiguousarray(index.index.reconstruct_n(0, index.index.ntotal)).tobytes())
    if index.tokens is not None:
        packed = index.tokens.packed()
        codes, scales = packed.blocks[0]
        h.update(np.asarray(codes).tobytes() + np.asarray(scales).tobytes() + packed.spans.tobytes())
    for name, array in sorted(saved_arrays(index.lexical).items()):
        h.update(name.encode() + np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def save_forever(target: Path, start: int, sources: list[Path]) -> None:
    states = [FaissIndex.load(p) for p in sources]
    print("ready", flush=True)
    i = start
    while True:
        states[i % len(states)].save(target)
        print(f"saved {i}", flush=True)
        i += 1


def save_limited(source: Path, target: Path, limit: int) -> None:
    index = FaissIndex.load(source)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    index.save(target)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "save-forever":
        save_forever(Path(args[0]), int(args[1]), [Path(a) for a in args[2:]])
    elif command == "save-limited":
        save_limited(Path(args[0]), Path(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown command {command!r}")
