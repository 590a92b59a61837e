"""Article extraction on real news pages (8 pages of the article-extraction benchmark, MIT licence, in
``tests/data``) and on synthetic ones: the article's text without the page's clutter, its metadata, pages
without an article, and ``qa eval`` printing the benchmark's scores beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.web import BENCHMARK, PAGES, benchmark_page, benchmark_truth

from qa.cli import main
from qa.ingest.html import extract_article, visible_text
from qa.tools.eval.extraction import metrics, shingle_scores


@pytest.mark.parametrize(
    ("key", "title", "authors", "published", "outlet"),
    [
        ("7a457a4f", "New York man pleads guilty to threatening to kill Rep. Ilhan Omar", ("Phil Helsel",),
         "2019-11-19T08:41:00.000Z", "NBC News"),  # JSON-LD
        ("e7994d55", "UK Tories under fire for Twitter name switch during debate", ("DANICA KIRKA",
         "JILL LAWLESS Associated Press"), "2019-11-20T06:01:44-05:00", "Hosted"),  # OpenGraph + article:*, no JSON-LD
        ("359fee22", None, None, "2019-11-19", "ScienceAlert"),  # OpenGraph only
    ],
)
def test_real_pages_give_their_article_and_metadata(
    key: str, title: str | None, authors: tuple[str, ...] | None, published: str, outlet: str
) -> None:
    found = extract_article(benchmark_page(key).decode("utf-8"), benchmark_truth(key)["url"])
    assert found.found_article and "\n\n" in found.text
    assert (found.published, found.outlet) == (published, outlet)
    if title is not None:
        assert found.title == title
    if authors is not None:
        assert found.authors == authors
    tp, _fp, _fn = shingle_scores(found.text, benchmark_truth(key)["articleBody"])
    assert tp > 0.9  # the page's menus, links and comment forms are not in it


def test_extraction_beats_visible_text_on_every_page() -> None:
    truth = json.loads((BENCHMARK / "ground-truth.json").read_text(encoding="utf-8"))
    ours, plain = [], []
    for key, row in truth.items():
        html = benchmark_page(key[:8]).decode("utf-8")
        ours.append(shingle_scores(extract_article(html, row["url"]).text, row["articleBody"]))
        plain.append(shingle_scores(visible_text(html), row["articleBody"]))
    assert metrics(ours)["precision"] >= 0.95 and metrics(ours)["f1"] >= 0.95
    assert metrics(ours)["f1"] > metrics(plain)["f1"] + 0.2


@pytest.mark.parametrize("name", ["home.html", "index.html", "empty.html"])
def test_pages_without_an_article_are_recognised(name: str) -> None:
    found = extract_article((PAGES / name).read_text(encoding="utf-8"))
    assert not found.found_article
    assert found.published is None and found.authors == ()


def test_qa_eval_prints_the_extraction_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "extraction.json"
    assert main(["eval", str(BENCHMARK), "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    for row in ("qa extraction (article body)", "trafilatura, bare", "visible text (html-text), baseline"):
        assert f"| {row}" in table
    result = json.loads(out_json.read_text())
    systems = result["systems"]
    assert result["pages"] == 8 and len(systems) == 4
    ours = systems["qa extraction (article body)"]
    assert ours["f1"] >= systems["visible text (html-text), baseline"]["f1"] + 0.2 and ours["precision"] >= 0.95
