"""The shape of the code, checked from its source: no import cycles, small modules, declared capabilities,
the tools kept out of the library, the public surface, and a test suite that needs nothing outside the
repository."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.data import ROOT

import qa

#: Source folders and the package each is installed as (``ui/`` ships as ``qa.ui``).
PACKAGES = {"qa": ROOT / "qa", "qa.ui": ROOT / "ui"}
MAX_LINES = 420
#: ``getattr``/``hasattr`` on third-party objects whose attributes vary by version; never on our own
#: embedders or generators, whose capabilities are declared (``can_encode_tokens``, ``writes_free_text``).
ALLOWED_ATTRIBUTE_PROBES = {
    ("qa/embed/export.py", "getattr", "tokenizer"),  # a transformers tokenizer: is_fast, model_input_names
    ("qa/embed/export.py", "getattr", "st[0]"),  # a sentence-transformers module: do_lower_case
}
#: Only these may import ``qa.tools`` (the CLI dispatches ``qa eval`` and ``qa bench`` to it).
TOOL_IMPORTERS = ("qa.cli",)
PUBLIC = {
    "Answer", "Citation", "ConfigError", "Document", "DocumentError", "Hit", "IndexError_", "InputError",
    "LLMError", "Pipeline", "QAError", "Retrieval", "Sentence", "Turn", "answer", "read_document",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    typing_only: bool  # inside ``if TYPE_CHECKING:``: never executed
    line: int


def _module_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for prefix, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _module_names()


def _typing_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                out.update(id(n) for n in ast.walk(child))
    return out


def _resolve(source: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved against ``source``)."""
    if not node.level:
        return node.module or ""
    package = source if MODULES[source].name == "__init__.py" else source.rsplit(".", 1)[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _edges(source: str) -> Iterator[Edge]:
    """Every import of one of our modules by ``source``: top-level, in functions, and typing-only ones.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``. The implicit
    import of a module's parent packages is not counted (every package's ``__init__`` would be a cycle).
    """
    tree = ast.parse(MODULES[source].read_text(encoding="utf-8"))
    typing_only = _typing_only_nodes(tree)
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(source, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target and target not in MODULES and "." in target:  # ``import qa.index.lexical as x``
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != source:
                yield Edge(source, target, id(node) in typing_only, node.lineno)


EDGES = [edge for name in MODULES for edge in _edges(name)]


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_module_map_covers_both_source_folders() -> None:
    assert {"qa", "qa.pipeline", "qa.ui", "qa.ui.app", "qa.ui.server", "qa.tools.eval.run"} <= set(MODULES)
    assert any(e.source == "qa.ui.app" and e.target == "qa.ui.render" for e in EDGES)  # ``from . import render``
    assert any(e.source == "qa.cli" and e.target == "qa.ui.server" for e in EDGES)  # a function-level import
    assert any(e.typing_only for e in EDGES)


@pytest.mark.parametrize("typing_too", [False, True], ids=["runtime imports", "with typing-only imports"])
def test_no_import_cycles(typing_too: bool) -> None:
    edges = [e for e in EDGES if typing_too or not e.typing_only]
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a made-up back edge from ``qa.errors`` to ``qa.pipeline`` is a cycle."""
    back = Edge("qa.errors", "qa.pipeline", False, 0)
    assert any({"qa.errors", "qa.pipeline"} <= set(c) for c in _cycles([*EDGES, back]))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_too_long(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines; split it"


def _attribute_probes() -> set[tuple[str, str, str]]:
    found = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id in ("getattr", "hasattr"):
                found.add((path.relative_to(ROOT).as_posix(), node.func.id, ast.unparse(node.args[0])))
    return found


def test_capabilities_are_declared_not_probed() -> None:
    """``getattr``/``hasattr`` appear only on the listed third-party objects, never on an embedder or generator."""
    unexpected = _attribute_probes() - ALLOWED_ATTRIBUTE_PROBES
    assert not unexpected, f"probing instead of a declared capability: {sorted(unexpected)}"


def test_capabilities_are_declared_on_the_interfaces() -> None:
    from qa.answer import ExtractiveGenerator, Generator
    from qa.answer.ollama import OllamaGenerator
    from qa.embed import Embedder
    from qa.embed.onnx_embedder import OnnxEmbedder
    from qa.embed.sbert import SentenceTransformerEmbedder

    assert Embedder.can_encode_tokens is False and Generator.writes_free_text is True
    assert OnnxEmbedder.can_encode_tokens and SentenceTransformerEmbedder.can_encode_tokens
    assert ExtractiveGenerator.writes_free_text is False and OllamaGenerator.writes_free_text is True


def test_the_tools_stay_out_of_the_library() -> None:
    """``qa.tools`` (eval, bench, metrics) is reached from the CLI only; no library module imports it."""
    offending = [
        f"{e.source} (line {e.line}) imports {e.target}"
        for e in EDGES
        if e.target.startswith("qa.tools") and not e.source.startswith("qa.tools") and e.source not in TOOL_IMPORTERS
    ]
    assert offending == []


def test_the_public_surface_is_exactly_the_documented_one() -> None:
    from qa import errors, pipeline, types
    from qa.ingest import read

    homes = {name: types for name in ("Answer", "Citation", "Document", "Hit", "Retrieval", "Sentence", "Turn")}
    homes |= {name: errors for name in ("ConfigError", "DocumentError", "IndexError_", "InputError", "LLMError",
                                        "QAError")}
    homes |= {"Pipeline": pipeline, "answer": pipeline, "read_document": read}
    assert set(homes) == PUBLIC
    assert sorted(qa.__all__) == sorted(PUBLIC)
    for name, home in homes.items():
        assert getattr(qa, name) is getattr(home, name), name


def _test_files() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def test_no_test_reads_outside_the_repository() -> None:
    """A clone elsewhere has no sibling data folder: tests use ``tests/data`` and the package's own files."""
    word = "sha" + "red"  # spelled apart, so this file does not match itself
    needles = (f"../{word}", f'"{word}"', f"'{word}'", f"/{word}/")
    offending = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in [*_test_files(), *MODULES.values()]
        for needle in needles
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offending == []


def test_test_modules_have_unique_names() -> None:
    """Test folders have no ``__init__.py``: pytest imports each test file by its bare name."""
    names = [p.name for p in _test_files() if p.name.startswith("test_")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
