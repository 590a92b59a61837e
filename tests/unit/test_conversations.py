"""Saved conversations: a file in tmp_path, reopened as a restarted server would; one browser never reaches
another's conversations; answers come back with their citations."""

from __future__ import annotations

from pathlib import Path

from qa.ui.conversations import (
    ChatTurn,
    ConversationStore,
    answer_from_json,
    answer_to_json,
    new_browser_id,
    title_for,
    valid_browser_id,
)

from qa import config
from qa.types import Answer, Citation


def _answer() -> Answer:
    cite = Citation(n=1, doc_id="a.txt", text="It passed.", start=4, end=14, score=0.8125, title="Vote",
                    published="2018-02-06", url="https://news.example/a", outlet="Post")
    near = Citation(n=1, doc_id="b.txt", text="Close.", start=0, end=6, score=0.25)
    return Answer(question="Did it pass?", text="\u201cIt passed.\u201d [1]", abstained=False, citations=[cite],
                  backend="ollama:llama3.2", notice=None, unsupported=["Maybe."], related=[near])


def _turns(question: str, answer: Answer | None) -> list[ChatTurn]:
    return [
        ChatTurn(role="user", content=question, display=question, answer=None, error=False),
        ChatTurn(role="assistant", content=answer.text if answer else "boom", display="shown", answer=answer,
                 error=answer is None),
    ]


def test_answer_json_round_trip_keeps_citations() -> None:
    answer = _answer()
    assert answer_from_json(answer_to_json(answer)) == answer


def test_conversations_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "chats.sqlite3"
    me = new_browser_id()
    store = ConversationStore(path)
    conv = store.save(me, None, _turns("Did it pass?", _answer()))
    assert conv is not None
    secret = store.secret
    store.close()

    again = ConversationStore(path)
    assert again.secret == secret  # the browser's stored id can still be read after a restart
    assert [(c.conv_id, c.title) for c in again.listing(me)] == [(conv, "Did it pass?")]
    turns = again.load(me, conv)
    assert turns == _turns("Did it pass?", _answer())
    assert turns is not None and turns[1]["answer"] is not None and turns[1]["answer"].citations[0].outlet == "Post"

    longer = turns + _turns("And then?", None)
    assert again.save(me, conv, longer) == conv  # same conversation, all four messages
    assert again.load(me, conv) == longer
    second = again.save(me, None, _turns("Another?", _answer()))
    assert [c.conv_id for c in again.listing(me)] == [second, conv]  # most recent first
    assert again.rename(me, conv, "  The   vote ") and again.listing(me)[1].title == "The vote"
    assert not again.rename(me, conv, "   ")
    assert again.delete(me, conv) and again.load(me, conv) is None
    assert [c.conv_id for c in again.listing(me)] == [second]


def test_one_browser_cannot_reach_another_browsers_conversations(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    me, other = new_browser_id(), new_browser_id()
    conv = store.save(me, None, _turns("Mine?", _answer()))
    assert conv is not None
    assert store.listing(other) == [] and store.load(other, conv) is None
    assert store.save(other, conv, _turns("Overwrite?", None)) is None
    assert not store.rename(other, conv, "x") and not store.delete(other, conv)
    assert store.load(me, conv) == _turns("Mine?", _answer())


def test_browser_ids_and_titles() -> None:
    assert valid_browser_id(new_browser_id()) is not None
    for bad in (None, 7, "", "../x", "A" * 32, new_browser_id() + "0"):
        assert valid_browser_id(bad) is None
    assert title_for("  Who\nstayed? ") == "Who stayed?"
    long = title_for("word " * 40)
    assert len(long) <= 80 and long.endswith("\u2026")


def test_in_memory_store_and_the_default_path(tmp_path: Path) -> None:
    store = ConversationStore(None)
    me = new_browser_id()
    conv = store.save(me, None, _turns("Q?", _answer()))
    assert conv is not None and store.load(me, conv) is not None
    assert config.resolve(index_dir=tmp_path / "idx").chats_db == tmp_path / "idx" / "chats.sqlite3"
    assert config.resolve(chats_db=tmp_path / "c.db").chats_db == tmp_path / "c.db"
