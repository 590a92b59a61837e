"""The ``qa`` command. Only this module (and the UI) turns domain errors into user messages.

``qa eval`` and ``qa bench`` are the tools in ``qa.tools``; they are reached only from here, never
imported by the library.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence

from qa import __version__, config
from qa.errors import ConfigError, EmptyDocumentError, QAError
from qa.ingest.header import document_label, label, short_date
from qa.question import check_question

#: Subcommands that are tools with their own argument parsers: ``qa eval ...``, ``qa bench ...``.
TOOLS = {"eval": "qa.tools.eval", "bench": "qa.tools.bench"}
#: What a terminal would act on instead of showing: control characters (escape sequences start with ESC or
#: the 8-bit CSI), and the bidirectional controls that reorder what is shown.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: object) -> str:
    """Text from an article, a model, a file name or an error, safe to print to a terminal.

    >>> shown("red\\x1b[31m alert\\x07 and \\u202eevil")
    'red[31m alert and evil'
    """
    return _UNPRINTABLE.sub("", str(text))


def _json(value: object) -> str:
    """JSON whose strings escape what ``shown`` removes (json escapes only the C0 controls itself)."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


STORE_HELP = "milvus://HOST:PORT/COLLECTION: the index lives in Milvus (or QA_STORE; default: the FAISS folder)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa", description="Ask questions about news articles; answers cite exact sentences."
    )
    p.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="index articles: files, folders, links to pages, RSS/Atom feeds")
    ix.add_argument("paths", nargs="+", metavar="SOURCE",
                    help=".txt, .md, .html or .pdf files, folders of them, http(s) links to pages or feeds")
    ix.add_argument("--index-dir", help="where the index lives (default: the seed index, or QA_INDEX_DIR)")
    ix.add_argument("--store", help=STORE_HELP)
    ix.add_argument("--embed-model", help="sentence-transformers model name or local path (or QA_EMBED_MODEL)")
    ix.add_argument("--rebuild", action="store_true", help="start a fresh index of exactly these sources")
    ix.add_argument("--shard", metavar="I/N",
                    help="index only shard I of N (0-based) of the sources into the Milvus store, beside "
                         "the other shards running at the same time (needs --store, an existing index)")
    ix.add_argument("--watch", type=float, metavar="MINUTES",
                    help="keep going: index the sources again every MINUTES (new feed entries only)")

    docs = sub.add_parser("docs", help="list the indexed documents (id, title, outlet, published, sentences)")
    docs.add_argument("--index-dir")
    docs.add_argument("--store", help=STORE_HELP)
    docs.add_argument("--json", action="store_true", help="print the list as JSON")

    rm = sub.add_parser("remove", help="remove documents from the index (ids as `qa docs` lists them)")
    rm.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    rm.add_argument("--index-dir")
    rm.add_argument("--store", help=STORE_HELP)

    ask = sub.add_parser("ask", help="answer a question, citing source sentences")
    ask.add_argument("question")
    ask.add_argument("--index-dir", help="the index to ask (default: index of the seed article, built on first use)")
    ask.add_argument("--store", help=STORE_HELP)
    ask.add_argument("--llm", help="auto (default), extractive, or ollama:MODEL (or QA_LLM)")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.add_argument("--doc", action="append", metavar="DOC_ID", dest="docs",
                     help="search only this document (repeat for several; ids as `qa docs` lists them)")
    ask.add_argument("--since", metavar="YYYY-MM-DD", help="only articles published on or after this date")
    ask.add_argument("--until", metavar="YYYY-MM-DD", help="only articles published on or before this date")

    serve = sub.add_parser("serve", help="start the web chat")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--index-dir")
    serve.add_argument("--llm", help="auto (default), extractive, or ollama:MODEL")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="required to listen on an address other than loopback; set QA_AUTH_PASSWORD to require a login",
    )
    serve.add_argument(
        "--allow-uploads",
        action="store_true",
        default=None,
        help="beyond loopback, let the chat's users add and remove documents (or QA_ALLOW_UPLOADS=1); "
        "each change is logged with the user name",
    )

    sub.add_parser("eval", help="measure retrieval and abstention (qa eval --help)", add_help=False)
    sub.add_parser("bench", help="measure speed: indexing, query latency, cold start (qa bench --help)",
                   add_help=False)
    return p


def _ask(args: argparse.Namespace) -> int:
    from qa.pipeline import Pipeline

    settings = config.resolve(index_dir=args.index_dir, llm=args.llm, store=args.store)
    check_question(args.question, settings.max_question_chars)  # fail fast, before loading any model
    if args.index_dir or settings.store:
        pipe = Pipeline.load(settings.index_dir, settings=settings)
    else:
        pipe = Pipeline.default(settings=settings)
    result = pipe.ask(args.question, llm=settings.llm, doc_ids=args.docs, since=args.since, until=args.until)
    if args.json:
        print(_json(result.to_json()))
        return 0
    if result.notice:
        print(f"note: {shown(result.notice)}", file=sys.stderr)
    print(shown(result.text))
    for c in result.citations:
        print(f"  [{c.n}] {shown(c.doc_id)} {c.start}-{c.end}: {shown(c.text)}")
        if c.title or c.outlet or c.published:
            print(f"      ({shown(label(c.title, c.outlet, c.published, c.doc_id))})")
    for span in result.unsupported:
        print(f"  (not verified: not supported by the cited sentence: {shown(span)})")
    if result.related:
        print("  related passages (they do not answer the question):")
    for c in result.related:
        print(f"  - {shown(c.doc_id)} {c.start}-{c.end}: {shown(c.text)}")
    return 0


def _index(args: argparse.Namespace) -> int:
    settings = config.resolve(index_dir=args.index_dir, embed_model=args.embed_model, store=args.store)
    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch takes a number of minutes above 0, not {args.watch:g}.")
    rebuild = args.rebuild
    if args.shard is not None:
        if rebuild or args.watch is not None:
            raise ConfigError("--shard adds to an existing index: run it without --rebuild and --watch.")
        return _index_shard(args.paths, settings, args.shard)
    while True:
        try:
            _index_once(args.paths, settings, rebuild=rebuild)
        except QAError as exc:
            if args.watch is None:
                raise
            print(f"error: {shown(exc)}", file=sys.stderr)  # watching: the next round may succeed
        if args.watch is None:
            return 0
        rebuild = False
        print(f"next update in {args.watch:g} min; Ctrl+C stops.", file=sys.stderr)
        time.sleep(args.watch * 60)


def _index_shard(sources: list[str], settings: config.Settings, shard: str) -> int:
    from qa.embed import make_embedder
    from qa.index import add_shard
    from qa.ingest.fetch import fetch_policy
    from qa.ingest.sources import read_sources

    report = read_sources(sources, max_bytes=settings.max_file_bytes, policy=fetch_policy(settings), known={})
    store = settings.store or str(settings.index_dir)
    written, unchanged = add_shard(store, report.documents, make_embedder(settings=settings), shard, progress=True)
    for note in dict.fromkeys(report.notes):
        print(f"note: {shown(note)}", file=sys.stderr)
    print(f"shard {shard}: wrote {written} document(s), {unchanged} unchanged, into {shown(store)}")
    return 0


def _index_once(sources: list[str], settings: config.Settings, *, rebuild: bool) -> None:
    from qa.errors import IndexNotFoundError
    from qa.ingest.dedupe import describe_additions
    from qa.ingest.fetch import fetch_policy
    from qa.ingest.sources import read_sources
    from qa.pipeline import Pipeline

    pipe = None
    if not rebuild:
        try:
            pipe = Pipeline.load(settings.index_dir, settings=settings)
        except IndexNotFoundError:
            pipe = None
    report = read_sources(sources, max_bytes=settings.max_file_bytes, policy=fetch_policy(settings),
                          known=pipe.documents if pipe is not None else {})
    if pipe is None:
        if not report.documents:
            raise EmptyDocumentError("(nothing was read from the sources given)")
        change = describe_additions({}, report.documents)
        # (rebuild only when asked: a second qa index that found no index waits for the first, then adds to it)
        pipe = Pipeline.from_documents(report.documents, index_dir=settings.index_dir, settings=settings,
                                       rebuild=rebuild, progress=True)
    else:
        change = pipe.add(report.documents, progress=True)
    documents = pipe.documents
    for verb, ids in (("added", change.added), ("replaced", change.replaced)):
        for doc_id in ids:
            shown_id = f"  [{doc_id}]" if documents[doc_id].title else ""
            print(shown(f"{verb}: {document_label(documents[doc_id])}{shown_id}"))
    if change.unchanged:
        print(f"unchanged: {len(change.unchanged)} document(s), nothing embedded")
    if report.unchanged:
        print(f"feed entries already indexed and unchanged: {len(report.unchanged)} (not fetched again)")
    for note in dict.fromkeys([*change.notes, *report.notes]):
        print(f"note: {shown(note)}", file=sys.stderr)
    index = pipe.index
    print(f"indexed {len(index.documents)} document(s), {len(index)} sentences, "
          f"into {shown(settings.store or settings.index_dir)}")


def _docs(args: argparse.Namespace) -> int:
    from qa.index import document_entries

    settings = config.resolve(index_dir=args.index_dir, store=args.store)
    location = settings.store or settings.index_dir
    entries = document_entries(location)
    rows = [{"id": doc_id, **{k: entry.get(k) for k in DOC_FIELDS}} for doc_id, entry in entries.items()]
    if args.json:
        print(_json(rows))
        return 0
    for row in rows:
        date = short_date(str(row["published"])) if row["published"] else ""
        print(shown(f"{row['id']}\t{row['title'] or ''}\t{row['outlet'] or ''}\t{date}\t{row['sentences']} sentences"))
    print(f"{len(rows)} document(s) in {shown(str(location))}", file=sys.stderr)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from qa.pipeline import Pipeline

    settings = config.resolve(index_dir=args.index_dir, store=args.store)
    pipe = Pipeline.load(settings.index_dir, settings=settings)
    change = pipe.remove(args.doc_ids)
    for doc_id in change.removed:
        print(f"removed: {shown(doc_id)}")
    print(f"{len(pipe.documents)} document(s), {len(pipe.index)} sentences left in "
          f"{shown(settings.store or settings.index_dir)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from qa.ui.server import serve  # mypy reads the package from ui/ (installed as qa.ui), so this is untyped here

    rc: int = serve(host=args.host, port=args.port, index_dir=args.index_dir, llm=args.llm,
                    allow_remote=args.allow_remote, allow_uploads=args.allow_uploads)
    return rc


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ask": _ask, "index": _index, "serve": _serve, "docs": _docs, "remove": _remove,
}
#: What ``qa docs --json`` lists for each document, beside its id.
DOC_FIELDS = ("title", "outlet", "published", "modified", "authors", "url", "language", "sentences", "source",
              "notice")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in TOOLS:  # the tool parses its own arguments and reports its own errors
        tool: Callable[[list[str]], int] = importlib.import_module(TOOLS[argv[0]]).cli
        return tool(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except QAError as exc:
        print(f"error: {shown(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
