"""The claim check through the whole path: a fake Ollama server (real HTTP) writes the replies, ``Pipeline.ask``
checks every sentence against the article (real embedder), and the answer says what it found: a hallucinated
number is flagged but keeps its citation, a faithful paraphrase is not flagged, a wrong citation is moved to
the sentence that supports the claim, and the formats models really write (lists, "According to the
article, …", a trailing list of sources, lower case, German) are read as claims."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers.fake_ollama import FakeOllama, number_of

from qa import config
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.pipeline import Pipeline
from qa.types import Answer

COUNCIL = (
    "The city council of Northbridge approved its 2025 budget on Tuesday by 23 votes to 19. "
    "The budget raises council tax by 4% and funds three new libraries. "
    "Council leader Ann Rees said the libraries would open in the spring. "
    "Opposition members warned that the rise would hurt pensioners on fixed incomes. "
    "The debate lasted four hours and was watched by about 200 residents."
)
GERMAN = (
    "Der Stadtrat von Nordbrück hat am Dienstag den Haushalt für 2025 mit 23 zu 19 Stimmen beschlossen. "
    "Der Haushalt erhöht die Grundsteuer um 4 Prozent und finanziert drei neue Bibliotheken. "
    "Ratsvorsitzende Anna Rees sagte, die Bibliotheken würden im Frühjahr öffnen."
)
TAX = "raises council tax by 4%"
REES = "Ann Rees said"
VOTES = "by 23 votes to 19"
LLM = "ollama:llama3.2"


@pytest.fixture
def ask(
    fake_ollama: Callable[..., FakeOllama], embedder: SentenceTransformerEmbedder
) -> Callable[..., Answer]:
    """Ask a question of an article, the fake model replying with ``script(request)``."""

    def run(script: Callable[[dict[str, Any]], str], question: str, article: str = COUNCIL) -> Answer:
        server = fake_ollama(script)
        pipe = Pipeline.from_texts({"article.txt": article}, embedder=embedder,
                                   settings=config.resolve(ollama_host=server.host))
        answer = pipe.ask(question, llm=LLM)
        assert answer.backend == LLM and not answer.abstained
        return answer

    return run


def test_a_hallucinated_number_is_flagged_and_keeps_its_citation(ask: Callable[..., Answer]) -> None:
    answer = ask(lambda r: f"Council tax will rise by 10% [{number_of(r, TAX)}].", "How much will council tax rise?")
    (claim,) = answer.claims
    assert claim.supported is False and claim.score is not None and claim.score < 0.5
    assert answer.unsupported == ["Council tax will rise by 10%."]
    assert answer.text == "Council tax will rise by 10% [1]." and TAX in answer.citations[0].text
    assert answer.text[claim.start : claim.end] == answer.text and claim.citations == (1,)


def test_a_faithful_paraphrase_is_not_flagged(ask: Callable[..., Answer]) -> None:
    answer = ask(lambda r: f"Council tax will go up by 4% [{number_of(r, TAX)}].", "How much will council tax rise?")
    assert [c.supported for c in answer.claims] == [True] and answer.unsupported == []
    assert TAX in answer.citations[0].text


def test_a_wrong_citation_is_moved_to_the_sentence_that_supports_the_claim(ask: Callable[..., Answer]) -> None:
    reply = "Ann Rees said the new libraries would open in the spring [{}]."
    answer = ask(lambda r: reply.format(number_of(r, VOTES)), "When will the libraries open?")
    assert [c.supported for c in answer.claims] == [True]
    assert REES in answer.citations[0].text  # the best support first ("new libraries" may add the budget's)
    assert not any(VOTES in c.text for c in answer.citations)


def test_an_uncited_claim_is_attributed_only_when_supported(ask: Callable[..., Answer]) -> None:
    answer = ask(lambda r: "The council approved the budget by 23 votes to 19. The mayor resigned in protest.",
                 "By how many votes did the council approve the budget?")
    first, second = answer.claims
    assert first.supported and first.citations == (1,) and VOTES in answer.citations[0].text
    assert second.supported is False and second.citations == ()
    assert answer.unsupported == ["The mayor resigned in protest."]


@pytest.mark.parametrize(
    "template",
    [
        "Here is what the article says:\n- The budget raises council tax by 4% [{tax}]\n"
        "- Ann Rees said the libraries would open in the spring [{rees}]",
        "1. The budget raises council tax by 4% [{tax}].\n2. The libraries open in the spring [{rees}].",
        "According to the article, council tax rises by 4% [{tax}]. The article says that the libraries "
        "will open in the spring [{rees}].",
        "Council tax rises by 4% [{tax}], and the libraries open in the spring [{rees}].\n\nSources:\n"
        "[{tax}] The budget raises council tax by 4% and funds three new libraries.\n[{rees}] Council leader…",
        "council tax rises by 4% [{tax}]. ann rees said the libraries would open in the spring [{rees}].",
    ],
    ids=["bullets", "numbered list", "according to the article", "trailing sources", "lower case"],
)
def test_the_formats_models_write_are_read_as_claims(ask: Callable[..., Answer], template: str) -> None:
    answer = ask(lambda r: template.format(tax=number_of(r, TAX), rees=number_of(r, REES)),
                 "What does the budget do to council tax and the libraries?")
    assert answer.unsupported == [] and all(c.supported for c in answer.claims) and answer.claims
    assert "Sources:" not in answer.text and "Council leader…" not in answer.text
    assert {c.text for c in answer.citations} >= {s + "." for s in COUNCIL.split(". ")[1:3]}
    for claim in answer.claims:  # every claim's place in the text is exact
        assert claim.text.rstrip(".")[-12:].lower() in answer.text[claim.start : claim.end].lower()


def test_a_german_answer_about_a_german_article(ask: Callable[..., Answer]) -> None:
    def script(r: dict[str, Any]) -> str:
        return (f"Laut dem Artikel hat der Stadtrat den Haushalt mit 23 zu 19 Stimmen angenommen "
                f"[{number_of(r, '23 zu 19')}]. Die Grundsteuer steigt um 12 Prozent [{number_of(r, '4 Prozent')}].")

    answer = ask(script, "Wie wurde der Haushalt beschlossen?", GERMAN)
    assert [c.supported for c in answer.claims] == [True, False]
    assert answer.unsupported == ["Die Grundsteuer steigt um 12 Prozent."]


def test_qa_ask_json_carries_each_sentences_verdict(
    fake_ollama: Callable[..., FakeOllama], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    from qa.cli import main

    server = fake_ollama(lambda r: f"Council tax will go up by 4% [{number_of(r, TAX)}]. It rises by 10%.")
    monkeypatch.setenv("OLLAMA_HOST", server.host)
    (tmp_path / "council.txt").write_text(COUNCIL, encoding="utf-8")
    assert main(["index", str(tmp_path / "council.txt"), "--index-dir", str(tmp_path / "ix")]) == 0
    capsys.readouterr()
    assert main(["ask", "--json", "--llm", LLM, "--index-dir", str(tmp_path / "ix"),
                 "How much will council tax rise?"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["text"], c["supported"], c["citations"]) for c in out["claims"]] == [
        ("Council tax will go up by 4%.", True, [1]),
        ("It rises by 10%.", False, []),
    ]
    assert all(0.0 <= c["score"] <= 1.0 for c in out["claims"]) and out["unsupported"] == ["It rises by 10%."]
