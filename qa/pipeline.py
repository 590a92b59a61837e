"""The pipeline: ingest → embed → store → retrieve → generate → cite, behind one class."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa import config
from qa.cite import build_answer
from qa.embed import Embedder, SentenceTransformerEmbedder, make_embedder  # noqa: F401 (tests patch the class)
from qa.errors import EmptyQuestionError, IndexNotFoundError, QuestionTooLongError
from qa.generate import ABSTAIN_TEXT, Generator, Selection
from qa.ingest import SEGMENTER_NAME, read_documents, segment
from qa.lexical import LexicalIndex, saved_arrays
from qa.retrieve import RetrievalConfig, Retriever
from qa.store import Store, TokenTable, content_hash, extend_index
from qa.types import Answer, Document, Hit, Sentence, Turn

HistoryLike = Sequence[Turn | Mapping[str, Any] | Sequence[Any]]


def build_store(
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    previous: Store | None = None,
    progress: bool = False,
) -> Store:
    """Segment and embed ``documents``, reusing the vectors (and token codes) of any whose content is
    unchanged; when the old rows stay in place, the new ones are appended to the old FAISS index."""
    reuse = previous if previous is not None and previous.model == embedder.name else None
    by_id: dict[str, Document] = dict(reuse.documents) if reuse is not None else {}
    for doc in documents:
        by_id[doc.doc_id] = doc
    sentences: list[Sentence] = []
    runs: list[tuple[bool, list[int]]] = []  # per document, in order: (reused?, its rows in the old store or in fresh)
    new_texts: list[str] = []
    for doc in by_id.values():
        old_doc = reuse.documents.get(doc.doc_id) if reuse is not None else None
        # the very object of the old store is unchanged without hashing its text again
        if old_doc is not None and (old_doc is doc or content_hash(old_doc.text) == content_hash(doc.text)):
            assert reuse is not None
            rows = reuse.rows_of(doc.doc_id)
            sentences.extend(reuse.sentences[r] for r in rows)
            runs.append((True, rows))
        else:
            pieces = segment(doc)
            runs.append((False, list(range(len(new_texts), len(new_texts) + len(pieces)))))
            sentences.extend(pieces)
            new_texts.extend(p.text for p in pieces)
    fresh, fresh_tokens = _encode(embedder, new_texts, progress=progress) if new_texts else (None, None)
    dim = fresh.shape[1] if fresh is not None else (reuse.dim if reuse is not None else embedder.dim)
    vectors = np.empty((len(sentences), dim), dtype=np.float32)
    pos = 0
    for reused, rows in runs:
        source = reuse.vectors if reused and reuse is not None else fresh
        if rows and source is not None:
            vectors[pos : pos + len(rows)] = source[rows]
        pos += len(rows)
    index, index_type = None, None
    if reuse is not None and extends(reuse, sentences):  # add the new vectors to the old index, no retraining
        index = extend_index(reuse.index, fresh if fresh is not None else np.zeros((0, dim), np.float32))
        index_type = reuse.index_type if index is not None else None
    store = Store(
        list(by_id.values()),
        sentences,
        vectors,
        model=embedder.name,
        segmenter=SEGMENTER_NAME,
        chunking={"unit": "sentence", "context": 1},
        tokens=_tokens(runs, reuse.tokens if reuse is not None else None, fresh_tokens),
        index=index,
        index_type=index_type,
    )
    if reuse is not None:
        store._saved = reuse._saved  # token blocks already on disk are kept by the next save
    return store


def extends(old: Store, sentences: Sequence[Sentence]) -> bool:
    """Whether ``sentences`` are ``old``'s own, in place, then new ones: its indexes can grow instead of
    being rebuilt."""
    n = len(old)
    return len(sentences) >= n and all(a is b for a, b in zip(sentences[:n], old.sentences, strict=True))


def _tokens(runs: list[tuple[bool, list[int]]], old: TokenTable | None, fresh: TokenTable | None) -> TokenTable | None:
    """The rerank's stored tokens in the new row order, sharing the blocks they come from (no codes are
    copied); None when some rows have none (an index built before tokens were stored, or an embedder
    without them): the rerank then encodes on the fly."""
    if not runs or any((old if reused else fresh) is None for reused, _ in runs):
        return None
    blocks = (old.blocks if old is not None else []) + (fresh.blocks if fresh is not None else [])
    names = (old.names if old is not None else []) + (fresh.names if fresh is not None else [])
    shift = len(old.blocks) if old is not None else 0
    spans = []
    for reused, rows in runs:
        table = old if reused else fresh
        assert table is not None
        part = table.spans[rows].reshape(-1, 3)
        if not reused:
            part[:, 0] += shift
        spans.append(part)
    return TokenTable(blocks, np.concatenate(spans), names)


def _encode(embedder: Embedder, texts: list[str], *, progress: bool) -> tuple[np.ndarray, TokenTable | None]:
    """Sentence vectors, and the rerank's token vectors when the embedder gives them in the same pass."""
    both = getattr(embedder, "encode_with_tokens", None)

    def run(chunk: list[str]) -> tuple[np.ndarray, TokenTable | None]:
        if both is None:
            return embedder.encode(chunk), None
        vectors, tokens = both(chunk)
        return vectors, TokenTable.quantize(tokens, vectors.shape[1])

    if not progress or len(texts) < 512:
        return run(texts)
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
    if both is None:
        return out, None
    inverse = np.empty(len(texts), dtype=np.int64)
    inverse[np.array(order, dtype=np.int64)] = np.arange(len(texts))
    joined = tables[0]
    for table in tables[1:]:
        joined = joined.extend(table)  # shares the chunks' blocks; one copy below, into row order
    return out, joined.take(inverse).packed()


def normalize_history(history: HistoryLike | None) -> list[Turn]:
    """Accept Turns, ``{"role", "content"}`` dicts (Gradio's format) or ``(user, assistant)`` pairs."""
    turns: list[Turn] = []
    for item in history or ():
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, Mapping):
            content = item.get("content")
            if isinstance(content, str):
                turns.append(Turn(role=str(item.get("role", "user")), content=content))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            user, assistant = item
            if isinstance(user, str):
                turns.append(Turn("user", user))
            if isinstance(assistant, str):
                turns.append(Turn("assistant", assistant))
    return turns


def check_question(question: object, limit: int) -> str:
    """The stripped question, or a domain error that says what is wrong with it."""
    if not isinstance(question, str) or not question.strip():
        raise EmptyQuestionError()
    q = question.strip()
    if len(q) > limit:
        raise QuestionTooLongError(len(q), limit)
    return q


class Pipeline:
    """A corpus index plus the stages that answer questions about it."""

    def __init__(
        self,
        store: Store,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        settings: config.Settings | None = None,
        retrieval: RetrievalConfig | None = None,
    ) -> None:
        self.settings = settings or config.resolve()
        self.embedder: Embedder = embedder or make_embedder(store.model)
        self.generator = generator
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self._retrieval = retrieval
        self._lock = threading.Lock()
        self._retriever = Retriever(store, self.embedder, retrieval)

    # ----- construction ------------------------------------------------------------------

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        *,
        index_dir: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
        embed_model: str | None = None,
        rebuild: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> Pipeline:
        """Index documents; with ``index_dir``, update the index there (unchanged documents are reused)."""
        settings = kwargs.pop("settings", None) or config.resolve(embed_model=embed_model)
        embedder = embedder or make_embedder(settings.embed_model)
        previous = None
        if index_dir is not None and not rebuild:
            try:
                previous = Store.load(Path(index_dir), expect_model=embedder.name)
            except IndexNotFoundError:
                previous = None
        store = build_store(documents, embedder, previous=previous, progress=progress)
        pipe = cls(store, embedder=embedder, index_dir=index_dir, settings=settings, **kwargs)
        if index_dir is not None:
            store.save(Path(index_dir), lexical=saved_arrays(pipe._retriever.lexical))
        return pipe

    @classmethod
    def from_texts(
        cls, texts: Mapping[str, str], index_dir: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> Pipeline:
        """Index ``{doc_id: text}``; in memory unless ``index_dir`` is given."""
        from qa.errors import EmptyDocumentError

        docs = []
        for doc_id, text in texts.items():
            if not isinstance(text, str) or not text.strip():
                raise EmptyDocumentError(repr(doc_id))
            docs.append(Document(doc_id=str(doc_id), text=text, source=str(doc_id)))
        if not docs:
            raise EmptyDocumentError("(no documents were given)")
        return cls.from_documents(docs, index_dir=index_dir, **kwargs)

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike[str]], index_dir: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> Pipeline:
        """Read ``.txt``, ``.md`` and ``.html`` files (or folders of them) and index them."""
        settings = kwargs.get("settings") or config.resolve(embed_model=kwargs.get("embed_model"))
        kwargs["settings"] = settings
        docs = read_documents([Path(p) for p in paths], max_bytes=settings.max_file_bytes)
        return cls.from_documents(docs, index_dir=index_dir, **kwargs)

    @classmethod
    def load(cls, index_dir: str | os.PathLike[str], **kwargs: Any) -> Pipeline:
        """Open an index built earlier; the manifest must match the configured embedder."""
        settings = kwargs.pop("settings", None) or config.resolve(embed_model=kwargs.pop("embed_model", None))
        embedder: Embedder = kwargs.pop("embedder", None) or make_embedder(settings.embed_model)
        store = Store.load(Path(index_dir), expect_model=embedder.name)
        return cls(store, embedder=embedder, index_dir=index_dir, settings=settings, **kwargs)

    @classmethod
    def default(cls, **kwargs: Any) -> Pipeline:
        """The index of ``seeds/`` in ``index/``, built on first use."""
        settings = kwargs.pop("settings", None) or config.resolve(
            index_dir=kwargs.pop("index_dir", None), embed_model=kwargs.pop("embed_model", None)
        )
        try:
            return cls.load(settings.index_dir, settings=settings, **kwargs)
        except IndexNotFoundError:
            return cls.from_paths([settings.seeds_dir], index_dir=settings.index_dir, settings=settings, **kwargs)

    # ----- the corpus --------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._retriever.store

    @property
    def documents(self) -> dict[str, Document]:
        return self.store.documents

    def add(self, documents: Sequence[Document], *, progress: bool = False) -> None:
        """Add or update documents; the index on disk is replaced atomically."""
        with self._lock:
            old = self._retriever
            store = build_store(documents, self.embedder, previous=old.store, progress=progress)
            if extends(old.store, store.sentences):  # BM25 gains the new sentences only
                lexical = old.lexical.extend([s.text for s in store.sentences[len(old.store) :]])
            else:
                lexical = LexicalIndex([s.text for s in store.sentences])
            if self.index_dir is not None:
                store.save(self.index_dir, lexical=saved_arrays(lexical))
            self._retriever = Retriever(store, self.embedder, self._retrieval, tokens=old.tokens, lexical=lexical)

    # ----- asking ------------------------------------------------------------------------

    def _check_question(self, question: object) -> str:
        return check_question(question, self.settings.max_question_chars)

    def retrieve(self, question: str, k: int | None = None, *, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The ranked sentences for a question, best first."""
        q = self._check_question(question)
        return self._retriever.search(q, k or self.settings.top_k, doc_ids=doc_ids)

    def _select(self, llm: str | None) -> Selection:
        if self.generator is not None and llm is None:
            return Selection(self.generator)
        from qa.generate import select_generator

        return select_generator(llm or self.settings.llm, self.settings)

    def stream(
        self,
        question: str,
        history: HistoryLike | None = None,
        *,
        llm: str | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield text deltas as they are generated, then the final ``Answer``.

        With ``llm="auto"``, a model that fails before writing anything is replaced by the
        extractive answerer (with a notice); once text has been streamed, the error propagates.
        """
        q = self._check_question(question)
        turns = normalize_history(history)
        selection = self._select(llm)
        query = self._standalone_query(q, turns)
        retriever = self._retriever
        hits = retriever.search(query, self.settings.top_k, doc_ids=doc_ids)
        generator, notice = selection.generator, selection.notice
        if retriever.abstains(hits):
            yield ABSTAIN_TEXT
            yield build_answer(q, ABSTAIN_TEXT, [], backend=generator.name, notice=notice)
            return
        from qa.errors import LLMError
        from qa.generate import ExtractiveGenerator, fallback_notice

        parts: list[str] = []
        try:
            for delta in generator.stream(q, hits, turns):
                parts.append(delta)
                yield delta
        except LLMError as exc:
            if not selection.auto or parts:
                raise
            generator, notice = ExtractiveGenerator(), fallback_notice(exc)
            for delta in generator.stream(q, hits, turns):
                parts.append(delta)
                yield delta
        extractive = isinstance(generator, ExtractiveGenerator)
        yield build_answer(
            q,
            "".join(parts),
            hits,
            backend=generator.name,
            notice=notice,
            embedder=None if extractive else self.embedder,
        )

    def ask(
        self,
        question: str,
        history: HistoryLike | None = None,
        *,
        llm: str | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> Answer:
        """Answer one question, with citations."""
        final: Answer | None = None
        for item in self.stream(question, history, llm=llm, doc_ids=doc_ids):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def _standalone_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up ("And what did he reject?") is searched with what it refers to in the history."""
        from qa.generate import standalone_query

        return standalone_query(question, history)


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline.default()
        return _default


def answer(question: str, *, llm: str | None = None, history: HistoryLike | None = None) -> Answer:
    """Answer a question about the default corpus (``seeds/``), building its index on first use."""
    return default_pipeline().ask(question, history, llm=llm)
