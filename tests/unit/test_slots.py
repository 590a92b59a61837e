"""The asked slot and whether a sentence fills it: what an on-topic question the article does not answer lacks."""

from __future__ import annotations

import pytest

from qa.retrieve.answerability import missing_names
from qa.retrieve.slots import asked_slot, slot_filled


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many flights did the airline cancel?", "count"),
        ("The airline stopped flying. How many of those flights were canceled?", "count"),  # the asking clause
        ("How many people died?", "count"),  # a past-tense verb ends the counted noun
        ("How fast was the lava moving?", "measure"),
        ("How tall is the menorah?", "measure"),
        ("How old was he when he set off?", "measure"),
        ("What time will the event start?", "clock"),
        ("In what year was the parade first held?", "year"),
        ("Between which years were the swings sold?", "year"),
        ("On what date is the runoff?", "date"),
        ("How much did Ford lose in China?", "money"),
        ("What was the price of the ticket?", "money"),
        ("Who hosted the ceremony?", "person"),
        ("Who held that record before him?", "person"),
    ],
)
def test_the_asking_clause_names_a_slot(question: str, kind: str) -> None:
    slot = asked_slot(question)
    assert slot is not None and slot.kind == kind


@pytest.mark.parametrize(
    "question",
    [
        "Why did the talks fail?",
        "What did the minister say?",
        "How many of them were there?",  # a pronoun is no noun to count
        "How much rain fell?",  # an amount of something other than money: ``offers`` checks a number
        "Which company bought the team?",
        "Who is Yoav Gallant?",  # asks what he is, not for a name
        "Who were the Normans?",
    ],
)
def test_no_slot_is_checked_where_none_is_named(question: str) -> None:
    assert asked_slot(question) is None
    assert slot_filled(question, "Nothing here.") == 1.0


@pytest.mark.parametrize(
    ("question", "text", "filled"),
    [
        # a count counts the asked noun, and is no year, percentage or number the question states
        ("How many flights did Korean Air cancel?", "Korean Air said it canceled 57 flights on Friday.", 1.0),
        ("How many flights did Korean Air cancel?", "Korean Air canceled flights to Taipei on Friday.", 0.0),
        ("How many employees does the company have?", "Ford invested $1 billion in the company in 2017.", 0.0),
        ("How many gallons were pumped that week?", "Gallons pumped fell about 5% from a year earlier.", 0.0),
        ("How many deaths were reported last week?", "Weekly deaths were the lowest since March 2020.", 0.0),
        ("The brigade has 3,000 troops. How many troops will be in Poland?", "It keeps 3,000 troops there.", 0.0),
        ("How many people died?", "At least 1,000 people were killed, officials said.", 1.0),
        ("How many seats does the party hold?", "The party won two hundred seats.", 1.0),
        # money is an amount of money, not any number
        ("How much debt did he take on?", "He also lined up a substantial amount of debt financing.", 0.0),
        ("How much will Toyota pay each owner?", "There are about 260 owners facing this.", 0.0),
        ("How much will Toyota pay each owner?", "Toyota will pay each owner $10,000.", 1.0),
        ("The jackpot was $2 billion. How much was the prize?", "The prize was $2 billion.", 0.0),
        # a measure carries a unit of its kind
        ("How fast was the lava moving?", "The lava came within 3.6 miles of the road.", 0.0),
        ("How fast was the lava moving?", "It crawled forward at about 21 yards per hour.", 1.0),
        ("How tall is the menorah?", "It will be lit at 4 p.m. on Sunday.", 0.0),
        ("How tall is the menorah?", "The menorah stands 36 feet tall.", 1.0),
        ("How old was the pilot?", "The 17-year-old landed on Wednesday.", 1.0),
        # times: a year, a day, a clock time the question does not state
        ("In what year did he first sign with the Lakers?", "He signed a two-year extension on Wednesday.", 0.0),
        ("In what year did he first sign with the Lakers?", "He joined the Lakers in 2018.", 1.0),
        ("On what date did Toyota issue the warning?", "In June, Toyota warned owners to stop driving.", 0.0),
        ("On what date did Toyota issue the warning?", "Toyota issued the warning on June 23.", 1.0),
        ("On what date in June was it announced?", "The sale was announced in June.", 0.0),
        ("What time will the event start?", "The event is on September 7.", 0.0),
        ("What time will the event start?", "The event starts at 10 a.m. Pacific time.", 1.0),
        # a person: a name of two to four words that is not a place, an institution or a weekday
        ("Who will sing the anthem?", "The NFL announced on Sunday that Rihanna will perform.", 0.0),
        ("Who will sing the anthem?", "Country singer Chris Stapleton will sing the anthem.", 1.0),
        ("Who is credited with the holiday?", "The US Department of Labor says it began in the 1880s.", 0.0),
        ("Who hosted the ceremony for Maggie Hassan?", "Maggie Hassan thanked the crowd in Concord.", 0.0),
    ],
)
def test_a_sentence_fills_the_slot_only_with_the_right_kind_of_thing(question: str, text: str, filled: float) -> None:
    assert slot_filled(question, text) == filled


@pytest.mark.parametrize(
    ("question", "passage", "missing"),
    [
        # a possessive and a curly apostrophe are the same name
        ("Who became Peru's first female president?", "She is the first female president in Peru’s history.", 0.0),
        # news names a person by surname after the first mention
        ("Which country did Joseph Chahayed come from?", "Chahayed came to the US from Syria.", 0.0),
        # a month or a weekday dates, it does not name; nor does it join the name before it
        ("Who won Colombia's June 2022 run-off?", "Gustavo Petro won Colombia’s presidential race on Sunday.", 0.0),
        ("What did the mayor say on Thursday?", "The mayor spoke.", 0.0),
        ("Where did Joseph Chahayed meet Biden?", "Chahayed said so.", 0.5),
        ("Who sang for Rihanna at the Super Bowl?", "The NFL announced the show.", 1.0),
        ("Who sang?", "Nobody.", 0.0),  # no name asked about: nothing missing
    ],
)
def test_names_the_passage_lacks(question: str, passage: str, missing: float) -> None:
    assert missing_names(question, passage) == missing
