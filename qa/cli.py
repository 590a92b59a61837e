"""The ``qa`` command. Only this module (and the UI) turns domain errors into user messages.

``qa eval`` and ``qa bench`` are the tools in ``qa.tools``; they are reached only from here, never
imported by the library.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from qa import __version__, config
from qa.errors import QAError
from qa.question import check_question

#: Subcommands that are tools with their own argument parsers: ``qa eval ...``, ``qa bench ...``.
TOOLS = {"eval": "qa.tools.eval", "bench": "qa.tools.bench"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa", description="Ask questions about news articles; answers cite exact sentences."
    )
    p.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="index .txt, .md and .html files (or folders of them)")
    ix.add_argument("paths", nargs="+", help="files or folders to add to the index")
    ix.add_argument("--index-dir", help="where the index lives (default: the seed index, or QA_INDEX_DIR)")
    ix.add_argument("--embed-model", help="sentence-transformers model name or local path (or QA_EMBED_MODEL)")
    ix.add_argument("--rebuild", action="store_true", help="start a fresh index of exactly these files")

    ask = sub.add_parser("ask", help="answer a question, citing source sentences")
    ask.add_argument("question")
    ask.add_argument("--index-dir", help="the index to ask (default: index of the seed article, built on first use)")
    ask.add_argument("--llm", help="auto (default), extractive, or ollama:MODEL (or QA_LLM)")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")

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

    sub.add_parser("eval", help="measure retrieval and abstention (qa eval --help)", add_help=False)
    sub.add_parser("bench", help="measure speed: indexing, query latency, cold start (qa bench --help)",
                   add_help=False)
    return p


def _ask(args: argparse.Namespace) -> int:
    from qa.pipeline import Pipeline

    settings = config.resolve(index_dir=args.index_dir, llm=args.llm)
    check_question(args.question, settings.max_question_chars)  # fail fast, before loading any model
    if args.index_dir:
        pipe = Pipeline.load(settings.index_dir, settings=settings)
    else:
        pipe = Pipeline.default(settings=settings)
    result = pipe.ask(args.question, llm=settings.llm)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return 0
    if result.notice:
        print(f"note: {result.notice}", file=sys.stderr)
    print(result.text)
    for c in result.citations:
        print(f"  [{c.n}] {c.doc_id} {c.start}-{c.end}: {c.text}")
    for span in result.unsupported:
        print(f"  (not verified: not supported by the cited sentence: {span})")
    return 0


def _index(args: argparse.Namespace) -> int:
    from qa.pipeline import Pipeline

    settings = config.resolve(index_dir=args.index_dir, embed_model=args.embed_model)
    pipe = Pipeline.from_paths(
        args.paths, index_dir=settings.index_dir, settings=settings, rebuild=args.rebuild, progress=True
    )
    index = pipe.index
    print(f"indexed {len(index.documents)} document(s), {len(index)} sentences, into {settings.index_dir}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from qa.ui.server import serve  # mypy reads the package from ui/ (installed as qa.ui), so this is untyped here

    rc: int = serve(host=args.host, port=args.port, index_dir=args.index_dir, llm=args.llm,
                    allow_remote=args.allow_remote)
    return rc


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"ask": _ask, "index": _index, "serve": _serve}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in TOOLS:  # the tool parses its own arguments and reports its own errors
        tool: Callable[[list[str]], int] = importlib.import_module(TOOLS[argv[0]]).cli
        return tool(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
