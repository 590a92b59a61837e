"""The Milvus store against a real Milvus Lite server on loopback: the same answers and citations as the
FAISS store, errors translated, nothing but the server's own protocol between them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.data import GALLANT, GALLANT_Q, SEED_ID, seed_questions

from qa import errors
from qa.answer import ExtractiveGenerator
from qa.embed import Embedder
from qa.index import FaissIndex
from qa.index.milvus_index import MilvusIndex, MilvusTarget
from qa.pipeline import Pipeline
from qa.types import Document

pytest.importorskip("pymilvus", reason="the Milvus store needs pip install -e '.[milvus]' (the test extra has it)")
pytest.importorskip("milvus_lite", reason="the Milvus Lite test server needs pip install -e '.[milvus]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite gRPC server in a subprocess on a free loopback port; yields its host:port."""
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus")
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data / "db"), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (data / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Milvus Lite did not start in 120 s"
                time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_seed_answers_and_citations_match_the_faiss_store(milvus: str, embedder: Embedder, seed_text: str) -> None:
    spec = f"milvus://{milvus}/news"
    doc = Document(SEED_ID, seed_text)
    MilvusIndex.build(MilvusTarget.parse(spec), [doc], embedder).save()
    stored = MilvusIndex.load(spec, expect_model=embedder.name)  # read back from the server
    ref = FaissIndex.build([doc], embedder)
    assert stored.sentences == ref.sentences and len(stored.documents) == 1
    # the Milvus store keeps no token codes (the rerank encodes per question): compare with FAISS doing the same
    plain = FaissIndex(list(ref.documents.values()), ref.sentences, ref.vectors, model=ref.model,
                       segmenter=ref.segmenter, chunking=ref.chunking, index=ref.index)
    a = Pipeline(stored, embedder=embedder, generator=ExtractiveGenerator())
    b = Pipeline(plain, embedder=embedder, generator=ExtractiveGenerator())
    questions = [q.text for q in seed_questions()]
    assert len(questions) >= 10
    for q in questions:
        x, y = a.ask(q, llm="extractive"), b.ask(q, llm="extractive")
        assert x.text == y.text, q
        assert [(c.doc_id, c.start, c.end) for c in x.citations] == [(c.doc_id, c.start, c.end) for c in y.citations]
    gallant = a.ask(GALLANT_Q, llm="extractive")
    assert gallant.citations and gallant.citations[0].text.startswith(GALLANT)


def test_adding_and_removing_documents_reach_the_server(milvus: str, embedder: Embedder) -> None:
    spec = f"milvus://{milvus}/grow"
    target = MilvusTarget.parse(spec)
    first = MilvusIndex.build(target, [Document("a", "The cat sat on the mat. The dog barked.")], embedder)
    first.save()
    grown = MilvusIndex.load(spec).with_documents([Document("b", "Markets fell on Monday.")], embedder)
    grown.save()
    again = MilvusIndex.load(spec)
    assert set(again.documents) == {"a", "b"} and again.sentences == grown.sentences
    _, ids = again.dense_search(embedder.encode(["Markets fell on Monday."]), 1)
    assert again.sentences[int(ids[0, 0])].doc_id == "b"
    left = again.without_documents(["a"], embedder)
    left.save()  # rows move: a new generation of collections, then one alias switch
    final = MilvusIndex.load(spec)
    assert set(final.documents) == {"b"} and [s.doc_id for s in final.sentences] == ["b"]
    from pymilvus import MilvusClient

    client = MilvusClient(uri=target.uri)
    try:
        names = [n for n in client.list_collections() if n.startswith("grow__")]
        assert len(names) == 2  # the previous generation was dropped after the switch
        assert client.describe_alias("grow")["collection_name"] in names
    finally:
        client.close()


def test_store_errors_say_what_to_do(milvus: str, embedder: Embedder, tmp_path: Path) -> None:
    with pytest.raises(errors.StoreError, match="milvus://HOST:PORT/COLLECTION"):
        MilvusTarget.parse("milvus://nowhere")
    with pytest.raises(errors.IndexNotFoundError):
        MilvusIndex.load(f"milvus://{milvus}/never_written")
    MilvusIndex.build(MilvusTarget.parse(f"milvus://{milvus}/other"), [Document("a", "One sentence.")],
                      embedder).save()
    with pytest.raises(errors.IndexMismatchError, match="another-model"):
        MilvusIndex.load(f"milvus://{milvus}/other", expect_model="another-model")
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=f"http://{milvus}")
    try:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("k", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        client.create_collection("theirs", schema=schema)
    finally:
        client.close()
    with pytest.raises(errors.StoreError, match="qa did not write"):
        MilvusIndex.load(f"milvus://{milvus}/theirs")
    with pytest.raises(errors.StoreError, match="cannot be reached"):
        MilvusIndex.load(f"milvus://127.0.0.1:{_free_port()}/news")


def test_qa_index_and_ask_with_a_milvus_store(milvus: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's command pair: ``qa index seeds/ --store milvus://…`` then ``qa ask --store milvus://…``."""
    from qa.cli import main
    from qa.config import asset_dir

    store = f"milvus://{milvus}/cli_news"
    assert main(["index", str(asset_dir("seeds")), "--store", store]) == 0
    assert f"into {store}" in capsys.readouterr().out
    assert main(["ask", GALLANT_Q, "--store", store, "--llm", "extractive", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["citations"] and out["citations"][0]["sentence"].startswith(GALLANT)
    assert main(["ask", GALLANT_Q, "--store", "milvus://nowhere", "--llm", "extractive"]) != 0
    assert "milvus://HOST:PORT/COLLECTION" in capsys.readouterr().err
