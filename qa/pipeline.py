"""The pipeline: ingest → embed → index → retrieve → answer → cite, wired behind one class.

This module only wires the stages; each stage's logic lives in its own package.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from qa import config
from qa.answer import ExtractiveGenerator, Generator, Selection, fallback_notice, select_generator
from qa.cite import ClaimChecker, ClaimModel, build_answer
from qa.embed import Embedder, make_embedder
from qa.errors import EmptyDocumentError, IndexNotFoundError, InputError, LLMError, UnknownDocumentError
from qa.index import SentenceIndex, build_index, is_store, latest, locked, open_index
from qa.ingest import read_documents
from qa.ingest.dedupe import describe_additions
from qa.question import DateRange, HistoryLike, check_dates, check_doc_ids, check_history, check_question
from qa.retrieve import RetrievalConfig, Retriever, evidence, overview, standalone_query
from qa.types import ABSTAIN_TEXT, Answer, Document, IndexChange, Retrieval

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Parts(TypedDict, total=False):
    """The swappable parts a pipeline can be given; each defaults from the settings."""

    settings: config.Settings
    embedder: Embedder
    generator: Generator
    retrieval: RetrievalConfig
    claim_model: ClaimModel


class Pipeline:
    """An index plus the stages that answer questions about it."""

    def __init__(
        self,
        index: SentenceIndex,
        *,
        index_dir: str | os.PathLike[str] | None = None,
        settings: config.Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        retrieval: RetrievalConfig | None = None,
        claim_model: ClaimModel | None = None,
    ) -> None:
        self.settings = settings or config.resolve()
        self.claim_model = claim_model  # None: the shipped claim-check weights
        self.embedder: Embedder = embedder or make_embedder(index.model, self.settings)
        self.generator = generator
        # a folder, or a store's address (kept as written: a Path would fold its ``//``)
        self.index_dir: Path | str | None = (
            None if index_dir is None else str(index_dir) if is_store(index_dir) else Path(index_dir)
        )
        self._lock = threading.Lock()
        self._retriever = Retriever(index, self.embedder, retrieval)

    # ----- construction ------------------------------------------------------------------

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        *,
        index_dir: str | os.PathLike[str] | None = None,
        rebuild: bool = False,
        progress: bool = False,
        **parts: Unpack[Parts],
    ) -> Pipeline:
        """Index documents; with ``index_dir``, update the index there (unchanged documents are reused)."""
        settings = parts.get("settings") or config.resolve()
        embedder = parts.get("embedder") or make_embedder(settings=settings)
        index_dir = _location(settings, index_dir)
        if index_dir is None:
            index = build_index(None, documents, embedder, progress=progress)
        else:  # read, add and save under the index's write lock: a concurrent writer's documents stay
            with locked(index_dir, timeout=settings.lock_timeout, on_wait=_notice if progress else None):
                previous = None
                if not rebuild:
                    try:
                        previous = open_index(index_dir, expect_model=embedder.name)
                    except IndexNotFoundError:
                        previous = None
                index = build_index(index_dir, documents, embedder, previous=previous, progress=progress)
                index.save(str(index_dir) if is_store(index_dir) else Path(index_dir))
        parts["settings"], parts["embedder"] = settings, embedder
        return cls(index, index_dir=index_dir, **parts)

    @classmethod
    def from_texts(
        cls, texts: Mapping[str, str], index_dir: str | os.PathLike[str] | None = None, **parts: Unpack[Parts]
    ) -> Pipeline:
        """Index ``{doc_id: text}``; in memory unless ``index_dir`` is given."""
        docs = []
        for doc_id, text in texts.items():
            if not isinstance(text, str) or not text.strip():
                raise EmptyDocumentError(repr(doc_id))
            docs.append(Document(doc_id=str(doc_id), text=text, source=str(doc_id)))
        if not docs:
            raise EmptyDocumentError("(no documents were given)")
        return cls.from_documents(docs, index_dir=index_dir, **parts)

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        rebuild: bool = False,
        progress: bool = False,
        base: str | os.PathLike[str] | None = None,
        **parts: Unpack[Parts],
    ) -> Pipeline:
        """Read ``.txt``, ``.md``, ``.html`` and ``.pdf`` files (or folders of them) and index them; a file's
        id is its path relative to ``base`` (default: the current directory)."""
        settings = parts["settings"] = parts.get("settings") or config.resolve()
        docs = read_documents([Path(p) for p in paths], max_bytes=settings.max_file_bytes,
                              base=Path(base) if base is not None else None)
        return cls.from_documents(docs, index_dir=index_dir, rebuild=rebuild, progress=progress, **parts)

    @classmethod
    def load(cls, index_dir: str | os.PathLike[str], **parts: Unpack[Parts]) -> Pipeline:
        """Open an index built earlier; the manifest must match the configured embedder."""
        settings = parts.get("settings") or config.resolve()
        embedder = parts.get("embedder") or make_embedder(settings=settings)
        location = _location(settings, index_dir) or index_dir
        index = open_index(location, expect_model=embedder.name)
        parts["settings"], parts["embedder"] = settings, embedder
        return cls(index, index_dir=location, **parts)

    @classmethod
    def default(cls, **parts: Unpack[Parts]) -> Pipeline:
        """The index at ``settings.index_dir`` (the seed article's, by default), built on first use."""
        settings = parts["settings"] = parts.get("settings") or config.resolve()
        try:
            return cls.load(settings.index_dir, **parts)
        except IndexNotFoundError:
            return cls.from_paths([settings.seeds_dir], index_dir=settings.index_dir, base=settings.seeds_dir, **parts)

    # ----- the corpus --------------------------------------------------------------------

    @property
    def index(self) -> SentenceIndex:
        return self._retriever.index

    @property
    def documents(self) -> Mapping[str, Document]:
        return self.index.documents

    def add(self, documents: Sequence[Document], *, progress: bool = False) -> IndexChange:
        """Add or update documents; the index on disk is replaced atomically. Says which documents were
        added, which replaced one of the same id, which were unchanged, and which are near-duplicates.

        With an index on disk, the documents are added to what is there now (under its write lock), so
        documents another process indexed meanwhile are kept, and seen here from then on.
        """
        with self._lock:
            if self.index_dir is None:
                change, index = self._with_added(self.index, documents, progress)
            else:
                wait = _notice if progress else None
                with locked(self.index_dir, timeout=self.settings.lock_timeout, on_wait=wait):
                    current = latest(self.index, self.index_dir)
                    change, index = self._with_added(current, documents, progress)
                    if index is not current:
                        index.save(self.index_dir)
            if index is not self.index:
                self._retriever = self._retriever.with_index(index)
            return change

    def _with_added(
        self, current: SentenceIndex, documents: Sequence[Document], progress: bool
    ) -> tuple[IndexChange, SentenceIndex]:
        """What adding ``documents`` to ``current`` changes, and the index with them (``current`` itself when
        nothing is new: nothing embedded, nothing written)."""
        before = current.documents
        change = describe_additions(before, documents)
        restated = [d for d in documents if d.doc_id in change.unchanged and d != before[d.doc_id]]
        if not change.added and not change.replaced and not restated:
            return change, current
        # (documents with the same text and new metadata, e.g. a feed entry's revision, embed nothing)
        return change, current.with_documents(documents, self.embedder, progress=progress)

    def remove(self, doc_ids: Sequence[str]) -> IndexChange:
        """Remove documents (nothing is embedded again); the index on disk is replaced atomically, so the
        previous one stays loadable until the switch. Unknown ids are refused before anything changes.
        With an index on disk, under its write lock and from what is there now, as ``add``."""
        ids = list(dict.fromkeys(doc_ids))
        with self._lock:
            if self.index_dir is None:
                _check_known(ids, self.index)
                index = self.index.without_documents(ids, self.embedder)
            else:
                with locked(self.index_dir, timeout=self.settings.lock_timeout):
                    current = latest(self.index, self.index_dir)
                    _check_known(ids, current)
                    index = current.without_documents(ids, self.embedder)
                    index.save(self.index_dir)
            self._retriever = self._retriever.with_index(index)
            return IndexChange(removed=tuple(ids))

    def check_doc_ids(self, doc_ids: Collection[str] | None) -> None:
        """Refuse ids that are not in the index (``qa ask --doc``, ``qa remove``, the chat's filter)."""
        _check_known(doc_ids, self.index)

    # ----- asking ------------------------------------------------------------------------

    def retrieve(
        self, question: str, k: int | None = None, *, doc_ids: Collection[str] | None = None,
        since: object = None, until: object = None,
    ) -> Retrieval:
        """The ranked sentences for a question, best first, and whether they answer it."""
        q = check_question(question, self.settings.max_question_chars)
        retriever = self._retriever
        scope = self._scope(doc_ids, check_dates(since, until), retriever.index)
        return retriever.search(q, k or self.settings.top_k, doc_ids=scope)

    def _scope(
        self, doc_ids: object, dates: DateRange | None, index: SentenceIndex
    ) -> list[str] | None:
        """The documents a question may cite: ``doc_ids`` (checked), narrowed to those published in
        ``dates``; the store filters its search by them."""
        ids = check_doc_ids(doc_ids)
        _check_known(ids, index)
        if dates is None:
            return ids
        docs = index.documents
        scope = [i for i in (ids if ids is not None else docs) if dates.allows(docs[i].published)]
        if not scope:
            span = f"{dates.since or 'any date'} to {dates.until or 'now'}"
            raise InputError(f"No indexed article was published from {span} (articles without a date are "
                             f"left out by a date filter); `qa docs` lists the dates.")
        return scope

    def _select(self, llm: str | None) -> Selection:
        if self.generator is not None and llm is None:
            return Selection(self.generator)
        return select_generator(llm or self.settings.llm, self.settings)

    def stream(
        self,
        question: str,
        history: HistoryLike | None = None,
        *,
        llm: str | None = None,
        doc_ids: Collection[str] | None = None,
        since: object = None,
        until: object = None,
    ) -> Iterator[str | Answer]:
        """Yield text deltas as they are generated, then the final ``Answer``.

        With ``llm="auto"``, a model that fails before writing anything is replaced by the
        extractive answerer (with a notice); once text has been streamed, the error propagates.
        """
        q = check_question(question, self.settings.max_question_chars)
        turns = check_history(history)
        dates = check_dates(since, until)
        selection = self._select(llm)
        retriever = self._retriever  # one snapshot of the index for the whole answer
        index = retriever.index
        doc_ids = self._scope(doc_ids, dates, index)
        if overview.is_overview(q):
            retrieval = overview.summary(index, doc_ids)
        else:
            retrieval = retriever.follow_up(q, standalone_query(q, turns), self.settings.top_k, doc_ids=doc_ids)
        generator, notice = selection.generator, selection.notice
        if retrieval.abstains:
            yield ABSTAIN_TEXT
            yield build_answer(q, ABSTAIN_TEXT, [], backend=generator.name, notice=notice,
                               related=evidence.related(retrieval), documents=index.documents)
            return
        hits = evidence.sources(q, retrieval, index, neighbours=generator.writes_free_text)
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
        checker = ClaimChecker(self.embedder, retriever.index, model=self.claim_model)  # the same snapshot
        yield build_answer(
            q, "".join(parts), hits, backend=generator.name, notice=notice,
            checker=checker if generator.writes_free_text else None, documents=retriever.index.documents,
        )

    def ask(
        self,
        question: str,
        history: HistoryLike | None = None,
        *,
        llm: str | None = None,
        doc_ids: Collection[str] | None = None,
        since: object = None,
        until: object = None,
    ) -> Answer:
        """Answer one question, with citations (``since`` / ``until``: only articles published then, as
        ``YYYY-MM-DD`` or ``date``)."""
        final: Answer | None = None
        for item in self.stream(question, history, llm=llm, doc_ids=doc_ids, since=since, until=until):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final


def _check_known(doc_ids: Collection[str] | None, index: SentenceIndex) -> None:
    missing = sorted(set(doc_ids or ()) - set(index.documents))
    if missing:
        raise UnknownDocumentError(missing, len(index.documents))


def _notice(message: str) -> None:
    """Progress notes for a command line (the same stream as the progress bars)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


_default: Pipeline | None = None
_default_lock = threading.Lock()


def _location(settings: config.Settings, index_dir: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """Where a persisted index lives: the store of ``--store`` / ``QA_STORE`` replaces the index folder."""
    if index_dir is not None and settings.store is not None:
        return settings.store
    return index_dir


def default_pipeline() -> Pipeline:
    """The process's pipeline over the default index, opened (or built) once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline.default()
        return _default


def answer(question: str, *, llm: str | None = None, history: HistoryLike | None = None) -> Answer:
    """Answer a question about the default corpus (the seed article), building its index on first use."""
    return default_pipeline().ask(question, history, llm=llm)
