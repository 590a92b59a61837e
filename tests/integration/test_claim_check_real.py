"""The claim checker with the real model (MiniLM token vectors), on articles written for these tests: faithful
paraphrases pass, invented numbers and names do not, lower-cased text is judged the same, and an answer in
German or French about a German or French article is not flagged for numbers and names it can match."""

from __future__ import annotations

import pytest

from qa.cite import check_claim
from qa.embed.sbert import SentenceTransformerEmbedder

COUNCIL = [
    "The city council of Northbridge approved its 2025 budget on Tuesday by 23 votes to 19.",
    "The budget raises council tax by 4% and funds three new libraries.",
    "Council leader Ann Rees said the libraries would open in the spring.",
    "Opposition members warned that the rise would hurt pensioners on fixed incomes.",
    "The debate lasted four hours and was watched by about 200 residents.",
]


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        ("The council approved the 2025 budget on Tuesday by 23 votes to 19.", True),
        ("Council tax will go up by 4%.", True),
        ("Ann Rees said the libraries would open in the spring.", True),
        ("The budget pays for three new libraries.", True),
        ("About 200 residents watched the four-hour debate.", True),
        ("Council tax will rise by 10%.", False),  # a number the article does not have
        ("The budget was approved by 31 votes to 11.", False),
        ("Council leader John Smith said the libraries would open in the spring.", False),  # a name it lacks
        ("The harbour wall will be demolished next year.", False),
    ],
)
def test_real_model_separates_supported_from_invented_claims(
    embedder: SentenceTransformerEmbedder, claim: str, supported: bool
) -> None:
    v = check_claim(claim, COUNCIL, embedder=embedder)
    assert v.supported is supported, v
    if supported:
        assert v.support, "a supported claim names the sentence that supports it"


@pytest.mark.parametrize(
    "claim",
    [
        "The council approved the 2025 budget on Tuesday by 23 votes to 19.",
        "Council tax will go up by 4%.",
        "Council tax will rise by 10%.",
        "Council leader John Smith said the libraries would open in the spring.",
    ],
)
def test_lower_cased_text_gets_the_same_verdict(embedder: SentenceTransformerEmbedder, claim: str) -> None:
    cased = check_claim(claim, COUNCIL, embedder=embedder)
    lowered = check_claim(claim.lower(), [s.lower() for s in COUNCIL], embedder=embedder)
    assert lowered.supported is cased.supported


GERMAN = [
    "Der Stadtrat von Nordbrück hat am Dienstag den Haushalt für 2025 mit 23 zu 19 Stimmen beschlossen.",
    "Der Haushalt erhöht die Grundsteuer um 4 Prozent und finanziert drei neue Bibliotheken.",
    "Ratsvorsitzende Anna Rees sagte, die Bibliotheken würden im Frühjahr öffnen.",
]
FRENCH = [
    "Le conseil municipal de Pontneuf a adopté mardi son budget 2025 par 23 voix contre 19.",
    "Le budget augmente la taxe foncière de 4 % et finance trois nouvelles bibliothèques.",
    "La présidente du conseil, Anne Rees, a déclaré que les bibliothèques ouvriraient au printemps.",
]


@pytest.mark.parametrize(
    ("article", "claim", "supported"),
    [
        (GERMAN, "Der Stadtrat hat den Haushalt mit 23 zu 19 Stimmen angenommen.", True),
        (GERMAN, "Anna Rees kündigte an, dass die drei Bibliotheken im Frühjahr eröffnet werden.", True),
        (GERMAN, "Die Grundsteuer steigt laut Haushalt um 4 Prozent.", True),
        (GERMAN, "Die Grundsteuer steigt um 12 Prozent.", False),
        (GERMAN, "Bürgermeister Klaus Becker hat den Haushalt beschlossen.", False),
        (FRENCH, "Le conseil a voté le budget 2025 par 23 voix contre 19.", True),
        (FRENCH, "Selon Anne Rees, les trois bibliothèques ouvriront au printemps.", True),
        (FRENCH, "La taxe foncière augmentera de 9 %.", False),
    ],
)
def test_answers_in_other_languages_are_held_to_their_numbers_and_names(
    embedder: SentenceTransformerEmbedder, article: list[str], claim: str, supported: bool
) -> None:
    assert check_claim(claim, article, embedder=embedder).supported is supported
