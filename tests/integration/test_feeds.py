"""``qa index FEED_URL`` on a feed of real news pages served on loopback: every entry is indexed with its
title, outlet and date; a second run fetches and embeds nothing; questions about who wrote an article and
when it was published are answered by citing its byline and dateline. And the document commands: ``qa docs``,
``qa remove``, ``qa ask --doc``, same-name files from two folders, near-duplicates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.web import Route, WebServer, benchmark_page, rss

from qa.cli import main

#: (benchmark key, path on the server, title, author, date) of the feed's entries: real pages.
ENTRIES = [
    ("7a457a4f", "/news/omar", "New York man pleads guilty to threatening to kill Rep. Ilhan Omar", "Phil Helsel",
     "2019-11-19T08:41:00+00:00"),
    ("d0382c0d", "/news/pge", "PG&E begins new mass power shutoff over wildfire fears", "Janie Har",
     "2019-11-20T06:09:25+00:00"),
    ("232a43fb", "/news/macbook", "13-Inch MacBook Pro With Scissor Keyboard Expected in 2020", "Joe Rossignol",
     "2019-11-18T10:45:00+00:00"),
]


def _feed(web: WebServer, entries: list[tuple[str, str, str, str, str]]) -> bytes:
    return rss("Loopback Wire", web.base, [
        {"title": t, "link": p, "author": a, "published": d} for _, p, t, a, d in entries
    ])


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        for key, path, *_ in ENTRIES:
            server.routes[path] = Route(benchmark_page(key))
        server.routes["/feed.xml"] = Route(_feed(server, ENTRIES), content_type="application/rss+xml")
        yield server


def _json(capsys: pytest.CaptureFixture[str], args: list[str]) -> object:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_a_feed_is_indexed_once_and_its_bylines_and_datelines_are_cited(
    web: WebServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", web.url("/feed.xml"), "--index-dir", ix]) == 0
    out = capsys.readouterr().out
    assert out.count("added: ") == 3 and "indexed 3 document(s)" in out
    docs = _json(capsys, ["docs", "--json", "--index-dir", ix])
    assert isinstance(docs, list)
    by_id = {d["id"]: d for d in docs}
    assert set(by_id) == {web.url(p) for _, p, *_ in ENTRIES}
    for _key, path, title, author, date in ENTRIES:
        doc = by_id[web.url(path)]
        assert doc["title"] == title and doc["authors"] == [author]  # the entry's metadata first
        assert doc["published"] == date and doc["outlet"] and doc["sentences"] > 3
    assert {by_id[web.url(p)]["outlet"] for _, p, *_ in ENTRIES} == {"NBC News", "Times Union", "MacRumors.com"}

    # a second run fetches no page and embeds nothing: the index files are not even rewritten
    manifest = (tmp_path / "ix" / "manifest.json").read_text()
    web.requests.clear()
    assert main(["index", web.url("/feed.xml"), "--index-dir", ix]) == 0
    out = capsys.readouterr().out
    assert "already indexed and unchanged: 3 (not fetched again)" in out and "added" not in out
    assert web.requests == ["/feed.xml"]
    assert (tmp_path / "ix" / "manifest.json").read_text() == manifest

    for _key, _path, title, author, date in ENTRIES:
        ask = ["ask", "--json", "--llm", "extractive", "--index-dir", ix]
        when = _json(capsys, [*ask, f"When was {title} published?"])
        who = _json(capsys, [*ask, f"Who wrote {title}?"])
        assert isinstance(when, dict) and isinstance(who, dict)
        (c,) = when["citations"]
        day = int(date[8:10])
        assert c["sentence"].startswith("Published by ") and f" on {day} November 2019" in c["sentence"]
        assert (c["title"], c["published"]) == (title, date) and c["url"] and c["outlet"]
        (w,) = who["citations"]
        assert w["sentence"] == f"By {author}." and w["title"] == title


def test_new_feed_entries_are_fetched_and_old_ones_are_not(
    web: WebServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "ix")
    web.routes["/feed.xml"] = Route(_feed(web, ENTRIES[:1]), content_type="application/rss+xml")
    assert main(["index", web.url("/feed.xml"), "--index-dir", ix]) == 0
    web.routes["/feed.xml"] = Route(_feed(web, ENTRIES[:2]), content_type="application/rss+xml")
    web.requests.clear()
    capsys.readouterr()
    assert main(["index", web.url("/feed.xml"), "--index-dir", ix]) == 0
    out = capsys.readouterr().out
    assert web.requests == ["/feed.xml", "/news/pge"]
    assert out.count("added: ") == 1 and "unchanged: 1" in out


def test_documents_are_listed_removed_and_added_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two ``lyon-tram-strike.txt`` from two folders are two documents; the same file given twice is one;
    ``qa remove`` takes one out without touching the other; adding it again brings it back."""
    for folder, text in (("le-progres", "Tram drivers in Lyon went on strike on Monday."),
                         ("lyon-mag", "The Lyon tram strike ended on Thursday after talks.")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "lyon-tram-strike.txt").write_text(text, encoding="utf-8")
    ix = str(tmp_path / "ix")
    first, second = (str(tmp_path / f / "lyon-tram-strike.txt") for f in ("le-progres", "lyon-mag"))
    assert main(["index", first, first, str(tmp_path / "le-progres" / "." / "lyon-tram-strike.txt"),
                 "--index-dir", ix]) == 0
    assert main(["index", second, "--index-dir", ix]) == 0
    docs = _json(capsys, ["docs", "--json", "--index-dir", ix])
    assert [d["id"] for d in docs] == [Path(first).as_posix(), Path(second).as_posix()]  # type: ignore[index]
    only = _json(capsys, ["ask", "--json", "--llm", "extractive", "--index-dir", ix, "--doc", Path(second).as_posix(),
                          "When did the tram strike end?"])
    assert {c["doc_id"] for c in only["citations"]} == {Path(second).as_posix()}  # type: ignore[index]
    assert main(["remove", Path(first).as_posix(), "--index-dir", ix]) == 0
    assert "removed: " in capsys.readouterr().out
    assert [d["id"] for d in _json(capsys, ["docs", "--json", "--index-dir", ix])] == [  # type: ignore[union-attr]
        Path(second).as_posix()
    ]
    assert main(["remove", "nowhere.txt", "--index-dir", ix]) == 2
    assert "Not in the index: nowhere.txt" in capsys.readouterr().err
    assert main(["index", first, "--index-dir", ix]) == 0
    assert "added: " in capsys.readouterr().out
    assert len(_json(capsys, ["docs", "--json", "--index-dir", ix])) == 2  # type: ignore[arg-type]
    # the same id with other content: replaced, and said so
    Path(first).write_text("Tram drivers in Lyon ended their strike on Friday.", encoding="utf-8")
    assert main(["index", first, "--index-dir", ix]) == 0
    assert "replaced: " in capsys.readouterr().out


def test_the_same_story_from_two_outlets_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    story = " ".join(f"Sentence {i} of the wire story about the harbour strike in Marseille." for i in range(30))
    (tmp_path / "a.md").write_text(f"---\ntitle: Harbour strike\noutlet: Le Wire\n---\n{story}\n", encoding="utf-8")
    (tmp_path / "b.md").write_text(f"---\ntitle: Strike at the harbour\noutlet: Daily\n---\n{story} Update.\n",
                                   encoding="utf-8")
    assert main(["index", str(tmp_path / "a.md"), str(tmp_path / "b.md"), "--index-dir", str(tmp_path / "ix")]) == 0
    err = capsys.readouterr().err
    assert "b.md is nearly identical to" in err and "Harbour strike \u2014 Le Wire" in err


def test_a_feed_entry_whose_page_fails_is_skipped_with_a_note(
    web: WebServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = [*ENTRIES[:1], ("", "/news/gone", "A story that was taken down", "Nobody", "2019-11-21T10:00:00+00:00")]
    web.routes["/feed.xml"] = Route(_feed(web, broken), content_type="application/rss+xml")
    assert main(["index", web.url("/feed.xml"), "--index-dir", str(tmp_path / "ix")]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("added: ") == 1
    assert f"note: skipped the feed entry {web.url('/news/gone')}: Could not fetch" in captured.err
    assert "HTTP 404" in captured.err


def test_watch_needs_a_positive_number_of_minutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("A story.", encoding="utf-8")
    assert main(["index", str(tmp_path / "a.txt"), "--watch", "0", "--index-dir", str(tmp_path / "ix")]) == 2
    assert "--watch takes a number of minutes above 0" in capsys.readouterr().err


def test_ask_since_and_until_keep_the_articles_published_then(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = ('<html><head><title>{t}</title><meta property="article:published_time" content="{d}"></head>'
            "<body><article><h1>{t}</h1><p>{p}</p><p>The council will meet again next month to review it.</p>"
            "</article></body></html>")
    (tmp_path / "march.html").write_text(page.format(t="Lyon tram strike", d="2024-03-04T08:00:00Z",
                                                     p="Tram drivers in Lyon went on strike on Monday."), "utf-8")
    (tmp_path / "april.html").write_text(page.format(t="Lyon tram strike ends", d="2024-04-11",
                                                     p="The Lyon tram strike ended on Thursday after talks."), "utf-8")
    ix = str(tmp_path / "ix")
    assert main(["index", str(tmp_path / "march.html"), str(tmp_path / "april.html"), "--index-dir", ix]) == 0
    capsys.readouterr()
    ask = ["ask", "--json", "--llm", "extractive", "--index-dir", ix, "What happened to the Lyon tram?"]
    april = _json(capsys, [*ask, "--since", "2024-04-01"])
    assert {c["doc_id"] for c in april["citations"]} == {(tmp_path / "april.html").as_posix()}  # type: ignore[index]
    march = _json(capsys, [*ask, "--until", "2024-03-31"])
    assert {c["doc_id"] for c in march["citations"]} == {(tmp_path / "march.html").as_posix()}  # type: ignore[index]
    assert main([*ask, "--since", "yesterday"]) == 2
    assert "since must be a date written YYYY-MM-DD" in capsys.readouterr().err
    assert main([*ask, "--since", "2025-01-01"]) == 2
    assert "No indexed article was published from 2025-01-01" in capsys.readouterr().err
