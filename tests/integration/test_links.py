"""Fetching links from a real HTTP server on loopback: pages, redirects, and every limit (time, size,
redirects, content type, scheme, private addresses), each refused with a message that says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.web import PAGES, Route, WebServer, benchmark_page

from qa import errors
from qa.ingest.fetch import FetchPolicy, fetch, is_public
from qa.ingest.formats import NO_ARTICLE_NOTICE
from qa.ingest.sources import read_sources

POLICY = FetchPolicy(timeout=5, max_bytes=1_000_000, max_redirects=3, allow_private=True)
NBC = "7a457a4f"


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes["/nbc"] = Route(benchmark_page(NBC))
        server.routes["/r1"] = Route(status=302, location="/r2", content_type=None)
        server.routes["/r2"] = Route(status=301, location="/nbc", content_type=None)
        server.routes["/loop"] = Route(status=302, location="/loop", content_type=None)
        server.routes["/slow"] = Route(benchmark_page(NBC), mode="slow")
        server.routes["/hang"] = Route(mode="hang")
        server.routes["/huge"] = Route(mode="huge", send_length=False)
        server.routes["/big"] = Route(b"<p>" + b"y" * 2_000_000 + b"</p>")
        server.routes["/image"] = Route(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png")
        server.routes["/home"] = Route((PAGES / "home.html").read_bytes())
        server.routes["/text"] = Route(b"Plain words.\nSecond line here.", content_type="text/plain")
        server.routes["/nolength"] = Route(benchmark_page(NBC), send_length=False, content_type=None)
        yield server


def _read(web: WebServer, path: str, policy: FetchPolicy = POLICY) -> list[object]:
    return list(read_sources([web.url(path)], max_bytes=policy.max_bytes, policy=policy).documents)


def test_a_page_is_fetched_reduced_to_its_article_and_named_by_its_link(web: WebServer) -> None:
    (doc,) = read_sources([web.url("/nbc")], max_bytes=POLICY.max_bytes, policy=POLICY).documents
    assert doc.doc_id == web.url("/nbc") and doc.source == web.url("/nbc")
    assert doc.title == "New York man pleads guilty to threatening to kill Rep. Ilhan Omar"
    assert (doc.authors, doc.outlet, doc.published[:10]) == (("Phil Helsel",), "NBC News", "2019-11-19")
    assert doc.url is not None and doc.url.startswith("https://www.nbcnews.com/")  # the page's canonical address
    assert doc.text.startswith(f"{doc.title}\nBy Phil Helsel.\nPublished by NBC News on 19 November 2019.\n\n")
    assert doc.notice is None


def test_redirects_are_followed_each_hop_checked(web: WebServer) -> None:
    got = fetch(web.url("/r1"), POLICY)
    assert got.url == web.url("/r1") and got.final_url == web.url("/nbc") and got.content_type == "text/html"
    assert web.requests[-3:] == ["/r1", "/r2", "/nbc"]


@pytest.mark.parametrize(
    ("path", "policy", "error", "message"),
    [
        ("/loop", POLICY, errors.FetchError, "more than 3 redirects"),
        ("/slow", FetchPolicy(timeout=1.0), errors.FetchError, "no complete answer within 1 s"),
        ("/hang", FetchPolicy(timeout=1.0), errors.FetchError, "within 1 s"),
        ("/huge", POLICY, errors.FileTooLargeError, "is more than 1.0 MB; the limit is 1.0 MB"),
        ("/big", POLICY, errors.FileTooLargeError, "is 2.0 MB; the limit is 1.0 MB"),
        ("/missing", POLICY, errors.FetchError, "HTTP 404"),
        ("/image", POLICY, errors.LinkContentTypeError, "returned image/png; only web pages"),
        ("/nbc", FetchPolicy(allow_private=False), errors.PrivateLinkError, "resolves to 127.0.0.1"),
    ],
    ids=["redirect loop", "slow server", "no answer", "huge, no length", "huge, with length", "404",
         "image", "private address"],
)
def test_links_are_refused_with_a_reason(
    web: WebServer, path: str, policy: FetchPolicy, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace(".", r"\.")) as info:
        _read(web, path, policy)
    assert isinstance(info.value, errors.DocumentError)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/a.html", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "names no host"),
        ("http://user:secret@127.0.0.1/", "user name or password"),
        ("http://no-such-host.invalid/", "could not be resolved"),
        ("http://127.0.0.1:1/", "connection was refused"),
    ],
)
def test_bad_links(url: str, message: str) -> None:
    with pytest.raises(errors.LinkError, match=message):
        fetch(url, POLICY)


def test_private_addresses_are_refused_by_name_too() -> None:
    with pytest.raises(errors.PrivateLinkError, match="QA_ALLOW_PRIVATE_LINKS=1"):
        fetch("http://localhost:9/", FetchPolicy(allow_private=False))
    assert [is_public(a) for a in ("93.184.216.34", "192.168.1.1", "fd00::1", "100.64.0.1", "0.0.0.0")] == [
        True, False, False, False, False
    ]


def test_a_page_without_an_article_says_so(web: WebServer) -> None:
    report = read_sources([web.url("/home")], max_bytes=POLICY.max_bytes, policy=POLICY)
    (doc,) = report.documents
    assert doc.notice == NO_ARTICLE_NOTICE and "Top stories" in doc.text
    assert doc.published is None  # the footer's copyright year is no date
    assert report.notes == [f"{doc.doc_id}: {NO_ARTICLE_NOTICE}"]


def test_plain_text_and_unlabelled_pages(web: WebServer) -> None:
    (text,) = _read(web, "/text")
    assert text.text == "Plain words.\nSecond line here."  # type: ignore[attr-defined]
    (page,) = _read(web, "/nolength")  # no content type, no length: sniffed as HTML, read to the end
    assert page.authors == ("Phil Helsel",)  # type: ignore[attr-defined]
