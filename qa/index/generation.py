"""The files of the generation a manifest names, checked before anything is read from them.

Each file must exist with the size the manifest gives. How its checksum is verified depends on its
size and use: small files are hashed now; the token codes per chunk, the first time a query reads that
chunk (``LazyCheck``); the vectors and the FAISS index whole, by a background thread that their first
use waits for (``DeferredChecks``). Opening a million-sentence index so hashes none of its gigabytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qa.errors import IndexCorruptError
from qa.index.manifest import CHUNK_BYTES, MANIFEST, LazyCheck, Manifest, file_hash
from qa.index.token_files import LAZY_ROLES, TOKEN_KINDS

#: Memory-mapped on open and hashed whole off the opening path (``DeferredChecks``), before their first use.
DEFERRED_ROLES = ("vectors", "faiss")

#: A file hashed off the opening path: its path, a handle opened under the reader's lease, its checksum.
Deferred = tuple[Path, BinaryIO, str]


@dataclass(frozen=True)
class GenerationFiles:
    """The files of one generation, by role, and how each one's checksum will be verified."""

    paths: dict[str, Path]
    lazy: dict[str, LazyCheck]
    deferred: tuple[Deferred, ...]
    blocks: int  # token code blocks
    has_tokens: bool


def generation_files(root: Path, manifest: Manifest) -> GenerationFiles:
    """Every file ``manifest`` names, each present with its size; small ones hashed, or ``IndexCorruptError``
    naming the first that is not right (handles opened for deferred checks are closed on failure)."""
    paths: dict[str, Path] = {}
    # indexes of token-less embedders have none; older ones hold int8 codes (no codebook): the rerank
    # then encodes per question until ``qa index --rebuild``
    has_tokens = "token_spans" in manifest.files and "token_codec" in manifest.files
    n_blocks = sum(1 for role in manifest.files if role.startswith("token_ids_"))
    token_roles = ["token_spans", "token_codec"] + [f"token_{k}_{b}" for b in range(n_blocks) for k in TOKEN_KINDS]
    optional = [*(token_roles if has_tokens else ()), *(["lexical"] if "lexical" in manifest.files else [])]
    lazy: dict[str, LazyCheck] = {}
    deferred: list[Deferred] = []
    for role in ("documents", "sentences", "vectors", "faiss", *optional):
        info = manifest.files.get(role)
        if not isinstance(info, dict) or "name" not in info:
            close_all(deferred)
            raise IndexCorruptError(str(root / MANIFEST), f"it names no {role} file")
        p = root / Path(str(info["name"])).name  # a manifest cannot point outside its directory
        try:
            if not p.is_file():
                raise IndexCorruptError(str(p), "the file is missing")
            if p.stat().st_size != info.get("bytes"):
                raise IndexCorruptError(str(p), "its size does not match the manifest")
            chunks = info.get("chunk_sha256")
            if role.startswith(LAZY_ROLES) and isinstance(chunks, list) and info.get("chunk_bytes") == CHUNK_BYTES:
                lazy[role] = LazyCheck(p, [str(c) for c in chunks], CHUNK_BYTES)
            elif role in DEFERRED_ROLES:  # opened under the lease: a writer cannot take it away meanwhile
                deferred.append((p, p.open("rb"), str(info.get("sha256"))))
            elif file_hash(p) != info.get("sha256"):
                raise IndexCorruptError(str(p), "its checksum does not match the manifest")
        except OSError as exc:
            close_all(deferred)
            raise IndexCorruptError(str(p), f"it cannot be read ({exc.strerror or exc})") from exc
        except IndexCorruptError:
            close_all(deferred)
            raise
        paths[role] = p
    return GenerationFiles(paths, lazy, tuple(deferred), n_blocks, has_tokens)


def close_all(files: Sequence[Deferred]) -> None:
    for _, handle, _ in files:
        handle.close()
