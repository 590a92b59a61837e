"""The dense side of the FAISS index: which FAISS index a corpus gets, building it, and growing it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import faiss
    from numpy.typing import NDArray

EXACT_MAX = 50_000  # above this many vectors an approximate index is built
IVF_MIN_PER_LIST = 32  # fewer training vectors per IVF list than this: exact search instead


def choose_index_type(n: int) -> str:
    """Exact search while it is fast enough, an inverted file (IVF) beyond.

    IVF rather than HNSW: on 2 cores it builds a 1M-sentence index in well under a minute (HNSW
    took minutes), reaches recall@10 ≥ 0.99 against exact search in a few milliseconds, and keeps
    its recall on the near-duplicate sentences news corpora are full of. ``hnsw`` indexes from
    older manifests still load and search.

    >>> choose_index_type(1000), choose_index_type(1_000_000)
    ('flat', 'ivf')
    """
    return "flat" if n <= EXACT_MAX else "ivf"


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: 2·√n (so a probe scans a few thousand vectors at most).

    >>> ivf_lists(100_000), ivf_lists(1_000_000)
    (632, 2000)
    """
    return max(16, int(2 * n**0.5))


def ivf_probes(nlist: int) -> int:
    """Lists searched per query: at least 32, and 1/32 of them (recall@10 ≥ 0.98 in ``qa bench``).

    >>> ivf_probes(632), ivf_probes(2000)
    (32, 62)
    """
    return min(nlist, max(32, nlist // 32))


def build_faiss(vectors: NDArray[np.float32], index_type: str) -> faiss.Index:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    index: faiss.Index
    if index_type == "flat" or (index_type == "ivf" and len(vectors) < IVF_MIN_PER_LIST * ivf_lists(len(vectors))):
        index = faiss.IndexFlatIP(dim)  # too few vectors to train the lists on: exact search is cheap anyway
    elif index_type == "ivf":
        nlist = ivf_lists(len(vectors))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.max_points_per_centroid = 64  # k-means on a sample of 64 vectors per list
        ivf.cp.niter = 10
        ivf.cp.seed = 1234
        ivf.train(vectors)
        ivf.nprobe = ivf_probes(nlist)
        index = ivf
    elif index_type == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.hnsw.efSearch = 256
        index = hnsw
    else:
        raise ValueError(f"unknown index type {index_type!r}")
    if len(vectors):
        index.add(vectors)
    return index


def read_mapped(path: str) -> tuple[faiss.Index, bool]:
    """A FAISS index file with its vectors memory-mapped, not read (1.5 GB for 1M vectors), where the index
    type allows it; and whether it is (a mapped index must not grow in place: ``extend_index(..., mapped=True)``).
    ``IO_FLAG_MMAP_IFC`` is in every FAISS the project allows (pyproject pins faiss-cpu >= 1.15)."""
    import faiss

    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC), True
    except RuntimeError:  # an index type that cannot be mapped: read it whole
        return faiss.read_index(path), False


def owned_copy(index: faiss.Index) -> faiss.Index:
    """A copy of ``index`` that owns its arrays (``faiss.clone_index`` keeps a mapped index's views, and adding
    to those aborts the process): written to bytes and read back."""
    import faiss

    return faiss.deserialize_index(faiss.serialize_index(index))


def extend_index(index: faiss.Index, new_vectors: NDArray[np.float32], *, mapped: bool = False) -> faiss.Index | None:
    """A copy of ``index`` with ``new_vectors`` appended (rows ``ntotal…``), or None when a rebuild is due.

    Adding an article then costs its own vectors plus one memory copy, instead of a rebuild. The
    original is left untouched (searches may be running on it). None when the grown corpus wants
    a different index type, or an IVF would have outgrown its lists (4× the vectors it was sized for).
    The caller keeps the index type of the index it extends (``hnsw`` of older indexes stays ``hnsw``).
    ``mapped``: ``index`` was read by ``read_mapped`` (its arrays are views of the file).
    """
    import faiss

    total = int(index.ntotal) + len(new_vectors)
    if isinstance(index, faiss.IndexFlat) and choose_index_type(total) != "flat":
        return None  # outgrew exact search
    if isinstance(index, faiss.IndexIVF) and ivf_lists(total) > 2 * int(index.nlist):
        return None  # 4× the vectors its lists were sized for: retrain
    if not len(new_vectors):
        return index  # nothing to add: share it (searching does not change an index)
    copy = owned_copy(index) if mapped else faiss.clone_index(index)
    copy.add(np.ascontiguousarray(new_vectors, dtype=np.float32))
    return copy


