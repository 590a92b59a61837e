"""The Milvus store against a real Milvus Lite server on loopback: the same answers and citations as the
FAISS store, errors translated, nothing but the server's own protocol between them."""

from __future__ import annotations

import json
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
from qa.tools.bench.milvus import free_port, milvus_lite_server
from qa.types import Document

pytest.importorskip("pymilvus", reason="the Milvus store needs pip install -e '.[milvus]' (the test extra has it)")
pytest.importorskip("milvus_lite", reason="the Milvus Lite test server needs pip install -e '.[milvus]'")


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite gRPC server in a subprocess on a free loopback port (the one ``qa bench`` starts);
    yields its host:port."""
    with milvus_lite_server(tmp_path_factory.mktemp("milvus") / "db") as address:
        yield address


def test_seed_answers_and_citations_match_the_faiss_store(milvus: str, embedder: Embedder, seed_text: str) -> None:
    spec = f"milvus://{milvus}/news"
    doc = Document(SEED_ID, seed_text)
    MilvusIndex.build(MilvusTarget.parse(spec), [doc], embedder).save()
    stored = MilvusIndex.load(spec, expect_model=embedder.name)  # read back from the server
    ref = FaissIndex.build([doc], embedder)
    assert stored.sentences == ref.sentences and len(stored.documents) == 1
    # the rerank's token codes come back from Milvus byte for byte
    assert stored.tokens is not None and ref.tokens is not None
    assert all((x == y).all() for x, y in zip(stored.tokens.get(range(len(ref))), ref.tokens.get(range(len(ref))),
                                                strict=True))
    a = Pipeline(stored, embedder=embedder, generator=ExtractiveGenerator())
    b = Pipeline(ref, embedder=embedder, generator=ExtractiveGenerator())
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
    left.save()  # the document's row goes first, then its sentence rows
    final = MilvusIndex.load(spec)
    assert set(final.documents) == {"b"} and [s.doc_id for s in final.sentences] == ["b"]
    from pymilvus import MilvusClient

    client = MilvusClient(uri=target.uri)
    try:
        rows = client.describe_alias("grow")["collection_name"].replace("__d", "__r")
        assert {r["doc_id"] for r in client.query(rows, filter="n >= 0", output_fields=["doc_id"])} == {"b"}
        MilvusIndex.build(target, [Document("c", "A fresh start.")], embedder).save()  # --rebuild: a new generation
        names = [n for n in client.list_collections() if n.startswith("grow__")]
        assert len(names) == 2  # the previous generation was dropped after the alias switch
        assert client.describe_alias("grow")["collection_name"] in names
    finally:
        client.close()
    assert set(MilvusIndex.load(spec).documents) == {"c"}


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
        MilvusIndex.load(f"milvus://127.0.0.1:{free_port()}/news")


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
    # qa docs lists the store's documents (from its documents collection) as it lists a FAISS folder's
    assert main(["docs", "--store", store, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1 and listed[0]["id"].endswith(SEED_ID)
    assert listed[0]["sentences"] == len(MilvusIndex.load(store).rows_of(listed[0]["id"])) > 10


def _squad_documents(n: int) -> list[Document]:
    from helpers.data import SQUAD_FILE

    raw = json.loads(SQUAD_FILE.read_text(encoding="utf-8"))["data"][:n]
    return [Document(a["title"], "\n".join(p["context"] for p in a["paragraphs"][:6])) for a in raw]


def test_shards_write_into_one_collection_at_once(milvus: str, embedder: Embedder) -> None:
    """``qa index --shard I/N`` on several machines: each writes its own documents into the same
    collection at the same time; every document ends up there once, and a second run embeds nothing."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from qa.index import add_shard
    from qa.index.milvus_index import Shard

    spec = f"milvus://{milvus}/sharded"
    docs = _squad_documents(4)
    MilvusIndex.build(MilvusTarget.parse(spec), docs[:1], embedder).save()  # the index exists first
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: add_shard(spec, docs, embedder, f"{i}/3"), range(3)))
    owners = [sum(Shard(i, 3).owns(d.doc_id) for i in range(3)) for d in docs]
    assert owners == [1] * len(docs)  # each document belongs to exactly one shard
    assert sum(w for w, _ in results) == 3 and sum(u for _, u in results) == 1  # docs[0] was there already
    stored = MilvusIndex.load(spec, expect_model=embedder.name)
    ref = FaissIndex.build(docs, embedder)
    assert sorted(stored.documents) == sorted(ref.documents)
    assert sorted((s.doc_id, s.n, s.start, s.end) for s in stored.sentences) == sorted(
        (s.doc_id, s.n, s.start, s.end) for s in ref.sentences)
    assert [add_shard(spec, docs, embedder, f"{i}/3")[0] for i in range(3)] == [0, 0, 0]  # nothing new
    from qa.index import document_entries

    counts = {doc_id: e["sentences"] for doc_id, e in document_entries(spec).items()}
    assert counts == {d: len(ref.rows_of(d)) for d in ref.documents}
    # new metadata only (a feed entry's revision): the document row changes, its sentences are kept
    renamed = [replace(docs[1], title="A new headline")]
    owner = next(i for i in range(3) if Shard(i, 3).owns(docs[1].doc_id))
    assert add_shard(spec, renamed, embedder, f"{owner}/3") == (1, 0)
    entry = document_entries(spec)[docs[1].doc_id]
    assert entry["title"] == "A new headline" and entry["sentences"] == len(ref.rows_of(docs[1].doc_id))


def test_a_writer_keeps_what_another_writer_added_meanwhile(milvus: str, embedder: Embedder) -> None:
    spec = f"milvus://{milvus}/two_writers"
    target = MilvusTarget.parse(spec)
    MilvusIndex.build(target, [Document("a", "Alpha rose."), Document("x", "Xray fell.")], embedder).save()
    mine = MilvusIndex.load(spec)
    MilvusIndex.load(spec).with_documents([Document("b", "Bravo won the vote.")], embedder).save()  # the other
    mine.without_documents(["x"], embedder).save()
    assert set(MilvusIndex.load(spec).documents) == {"a", "b"}


def test_an_unfinished_write_is_never_read(milvus: str, embedder: Embedder) -> None:
    """Sentence rows whose document row was never written (a writer killed between the two) are ignored."""
    from pymilvus import MilvusClient

    spec = f"milvus://{milvus}/unfinished"
    index = MilvusIndex.build(MilvusTarget.parse(spec), [Document("a", "Alpha rose. Then it fell.")], embedder)
    index.save()
    client = MilvusClient(uri=MilvusTarget.parse(spec).uri)
    try:
        rows = client.describe_alias("unfinished")["collection_name"].replace("__d", "__r")
        client.insert(rows, [{"key": "orphan:0", "doc_id": "a", "vkey": "orphan", "n": 0, "start": 0, "stop": 5,
                              "day": -1, "terms": "alpha", "tok": "", "dense": index.vectors[0].tolist()},
                             {"key": "ghost:0", "doc_id": "ghost", "vkey": "ghost", "n": 0, "start": 0, "stop": 3,
                              "day": -1, "terms": "ghost", "tok": "", "dense": index.vectors[0].tolist()}])
        client.flush(rows)
    finally:
        client.close()
    again = MilvusIndex.load(spec)
    assert set(again.documents) == {"a"} and again.sentences == index.sentences
    _, ids = again.dense_search(index.vectors[:1], 5)
    assert sorted(int(i) for i in ids[0] if i >= 0) == [0, 1]  # the orphan rows are not returned


def test_the_document_filter_is_pushed_into_the_hybrid_search(milvus: str, embedder: Embedder) -> None:
    """With a filter, Milvus searches only the allowed documents: their best sentences are candidates
    even when every global top-k sentence is in another document; answers match the FAISS store."""
    spec = f"milvus://{milvus}/filtered"
    docs = _squad_documents(3)
    MilvusIndex.build(MilvusTarget.parse(spec), docs, embedder).save()
    stored = MilvusIndex.load(spec)
    assert stored.hybrid_in_store and not FaissIndex.hybrid_in_store
    query = "What is the capital?"
    vector = embedder.encode([query])[0]
    lexical = stored.lexical.scores(query)
    other = docs[2].doc_id
    found = stored.candidate_rows(query, vector, lexical, 3, 5, doc_ids=[other])
    assert 3 <= len(found.rows) <= 6 and {stored.sentences[r].doc_id for r in found.rows.tolist()} == {other}
    everything = stored.candidate_rows(query, vector, lexical, 3, 5)
    assert len(everything.rows) >= 3
    ref = Pipeline(FaissIndex.build(docs, embedder), embedder=embedder, generator=ExtractiveGenerator())
    pipe = Pipeline(stored, embedder=embedder, generator=ExtractiveGenerator())
    for q in ("When did the Normans conquer England?", "What is the capital?"):
        x, y = pipe.ask(q, llm="extractive", doc_ids=[other]), ref.ask(q, llm="extractive", doc_ids=[other])
        assert {c.doc_id for c in x.citations} <= {other}
        assert [(c.doc_id, c.start) for c in x.citations] == [(c.doc_id, c.start) for c in y.citations], q


def test_an_index_of_an_older_layout_asks_for_a_rebuild(milvus: str, embedder: Embedder) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=f"http://{milvus}")
    try:
        d = MilvusClient.create_schema(auto_id=False)
        d.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=1024)
        d.add_field("row", DataType.VARCHAR, max_length=65535)
        d.add_field("pad", DataType.FLOAT_VECTOR, dim=2)
        ip = client.prepare_index_params()
        ip.add_index(field_name="pad", index_type="FLAT", metric_type="L2")
        client.create_collection("old__d1", schema=d, index_params=ip)
        client.insert("old__d1", [{"doc_id": "__qa_index_meta__", "pad": [0.0, 0.0],
                                   "row": json.dumps({"model": embedder.name, "rows": "old__r1", "sentences": 0})}])
        client.flush("old__d1")
        client.create_alias("old__d1", "old")
    finally:
        client.close()
    with pytest.raises(errors.StoreError, match="--rebuild"):
        MilvusIndex.load(f"milvus://{milvus}/old")
    MilvusIndex.build(MilvusTarget.parse(f"milvus://{milvus}/old"), [Document("a", "New.")], embedder).save()
    assert set(MilvusIndex.load(f"milvus://{milvus}/old").documents) == {"a"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--shard", "0/2"], "needs a Milvus store"),
    (["--shard", "2/2", "--store", "milvus://127.0.0.1:1/x"], "0 <= I < N"),
    (["--shard", "0/2", "--rebuild", "--store", "milvus://127.0.0.1:1/x"], "without --rebuild"),
])
def test_shard_arguments_are_checked(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.cli import main

    (tmp_path / "a.txt").write_text("One sentence here.", encoding="utf-8")
    assert main(["index", str(tmp_path / "a.txt"), "--index-dir", str(tmp_path / "ix"), *argv]) != 0
    assert message in capsys.readouterr().err


def test_a_document_longer_than_a_milvus_text_field_is_kept_whole(milvus: str, embedder: Embedder) -> None:
    """Milvus limits a VARCHAR to 64 KiB: a long article's text is stored in parts and read back whole;
    replacing it removes the old parts."""
    from pymilvus import MilvusClient

    spec = f"milvus://{milvus}/long"
    filler = "the council met again to weigh the budget, the roads, the schools and the harbour, é, " * 3
    long = Document("long.txt", " ".join(f"Paragraph {i} says {filler}and then it voted." for i in range(250)))
    assert len(long.text.encode("utf-8")) > 65_535
    MilvusIndex.build(MilvusTarget.parse(spec), [long, Document("a", "Short.")], embedder).save()
    stored = MilvusIndex.load(spec)
    assert stored.documents["long.txt"] == long and len(stored.rows_of("long.txt")) == len(FaissIndex.build(
        [long], embedder).sentences)
    client = MilvusClient(uri=MilvusTarget.parse(spec).uri)
    docs = client.describe_alias("long")["collection_name"]

    def parts() -> int:
        return len(client.query(docs, filter='doc_id like "__qa_part_%"', output_fields=["doc_id"]))

    try:
        assert parts() == -(-len(long.text) // 16_000)
        longer = Document("long.txt", long.text + " One more sentence at the end.")
        stored.with_documents([longer], embedder).save()
        assert MilvusIndex.load(spec).documents["long.txt"] == longer
        assert parts() == -(-len(longer.text) // 16_000)  # only the new version's parts are left
        shorter = Document("long.txt", "Now it is short.")
        MilvusIndex.load(spec).with_documents([shorter], embedder).save()
        assert MilvusIndex.load(spec).documents["long.txt"] == shorter and parts() == 0
    finally:
        client.close()
