"""Words as the claim check sees them: lower-cased tokens with offsets, stems, numbers, names and cues.

Pure functions of strings. Stems are the index's Snowball stems (``qa.index.terms.stemmer``), so a
word's rarity can be read from the index's BM25 statistics. Function words come from a short list of
our own (rarity weighs the rest); numbers are canonical strings, so "5,000", "5000" and "five thousand"
are not confused with "500".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from qa.index.terms import lower_plain, stemmer

_WORD = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)
_NUM = re.compile(r"\d+(?:[.,]\d{3})*(?:\.\d+)?")
#: The space of a number split after its separator ("235, 000", "98. 7"), as tokenised text writes it.
_SPACED_NUMBER = re.compile(r"\b(\d{1,3}),\s(\d{3})\b|\b(\d{1,3})\.\s(\d{1,2})\b")
NUMBER_WORDS: dict[str, str] = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
NUMBER_WORDS.update(
    {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
     "hundred": "100", "dozen": "12", "once": "1", "twice": "2", "first": "1", "second": "2", "third": "3",
     "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7", "eighth": "8", "ninth": "9", "tenth": "10",
     "half": "0.5", "single": "1", "double": "2", "triple": "3", "thousand": "1000", "million": "1000000",
     "billion": "1000000000"}
)
#: Function words: never content words.
STOP = frozenset(
    """a an and are as at be been being but by for from had has have having he her hers him his i if in into is it
    its itself me my no nor not of on or our ours she so such than that the their theirs them then there these
    they this those to too us was we were what when where which while who whom whose why will with would you
    your yours also just can could do does did done doing may might must shall should about after before over
    under up down out off again further once here all any both each few more most other some own same very s t
    don didn doesn isn wasn weren aren hasn haven hadn won wouldn couldn shouldn ll re ve d m o y said says say
    saying told tells according""".split()
)
#: The commonest English function words: their share of a text's words tells English from other languages.
#: (Words that are also common in German, French, Dutch or Spanish, such as "in", "a", "is", "was", are left out.)
_ENGLISH = frozenset(
    "the of and to for that with as by at from it he she they his her their has have be been were are "
    "this which who not but said would".split()
)
NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|cannot|unable|fail(?:s|ed)?|refus(?:e|es|ed)|"
    r"den(?:y|ies|ied)|reject(?:s|ed)?)\b|n['\u2019]t\b"
)
MODAL = re.compile(
    r"\b(?:may|might|could|would|should|possibl[ey]|likely|unlikely|expected|expects?|plans?|planned|planning|"
    r"propos(?:e|es|ed|al)|alleged(?:ly)?|reported(?:ly)?|suspected|believed|considering|consider|threaten(?:s|ed)?|"
    r"hopes?|hoped|wants?|wanted|intends?|aims?|seeks?|set to|bid to|if|whether|claims?|claimed)\b"
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The index's stem of a lower-cased word (Snowball English).

    >>> stem("running"), stem("elections")
    ('run', 'elect')
    """
    return str(stemmer().stemWord(word))


@dataclass(frozen=True)
class Word:
    """One word of a text: lower-cased, where it is, its stem, and what kind of word it is."""

    text: str  # lower-cased
    start: int
    end: int
    stem: str
    content: bool  # not a function word, and not a number
    number: str | None  # the canonical number this word denotes, if any
    name: bool  # capitalised and not the text's first word: a name (or, in German, a noun)


def words(text: str) -> list[Word]:
    """Lower-cased word tokens with character offsets, stems, and their content/number/name status.

    >>> [(w.text, w.content, w.number) for w in words("Two men, 5,000 fans and the U.S.")][:4]
    [('two', False, '2'), ('men', True, None), ('5,000', False, '5000'), ('fans', True, None)]
    >>> [w.text for w in words("Two men, 5,000 fans and the U.S.") if w.content]
    ['men', 'fans', 'u']
    >>> [w.text for w in words("Then Ana Ruiz spoke") if w.name]
    ['ana', 'ruiz']
    """
    out: list[Word] = []
    for i, m in enumerate(_WORD.finditer(text)):
        raw = m.group()
        w = lower_plain(raw)
        num: str | None = None
        if w[0].isdigit():
            num = canonical_number(w)
        elif w in NUMBER_WORDS:
            num = NUMBER_WORDS[w]
        w = w.removesuffix("'s")
        content = num is None and w not in STOP and not (len(w) == 1 and w != "u")
        name = i > 0 and raw[0].isupper() and content
        out.append(Word(w, m.start(), m.end(), stem(w) if w else w, content, num, name))
    return out


def canonical_number(token: str) -> str:
    """A number written with digits, without thousands separators or trailing zeros.

    >>> canonical_number("5,000"), canonical_number("1.50"), canonical_number("21:45")
    ('5000', '1.5', '21:45')
    """
    t = token
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "")
    if re.fullmatch(r"\d+\.\d+", t):
        t = t.rstrip("0").rstrip(".")
    return t


def _join_number(m: re.Match[str]) -> str:
    return f"{m[1]},{m[2]}" if m[1] else f"{m[3]}.{m[4]}"


def numbers_in(ws: Sequence[Word], text: str) -> set[str]:
    """Canonical numbers a text mentions: digit tokens (and their parts), number words, and a number
    that tokenised text split after its separator, read as one ("235, 000" also counts as 235000).

    >>> sorted(numbers_in(words("1.50 at 21:45"), "1.50 at 21:45"))
    ['1', '1.5', '21', '21:45', '45', '50']
    >>> sorted(numbers_in(words("viewed 235, 000 times"), "viewed 235, 000 times"))
    ['0', '000', '235', '235000']
    """
    out: set[str] = set()
    for w in ws:
        if w.number is not None:
            out.add(w.number)
            if not w.text[0].isdigit():
                continue
            for part in re.split(r"[.,:]", w.text):
                if part:
                    out.add(part.lstrip("0") or "0")
    for m in _NUM.finditer(text):
        out.add(canonical_number(m.group()))
    for m in _NUM.finditer(_SPACED_NUMBER.sub(_join_number, text)):  # "235, 000", "98. 7": tokenised text
        out.add(canonical_number(m.group()))
    return out


def ngrams(ws: Sequence[Word], n: int) -> set[tuple[str, ...]]:
    """Word n-grams over stems (function words included).

    >>> sorted(ngrams(words("the cats sat"), 2))
    [('cat', 'sat'), ('the', 'cat')]
    """
    s = [w.stem for w in ws]
    return {tuple(s[i : i + n]) for i in range(len(s) - n + 1)}


def looks_english(ws: Sequence[Word], default: bool = True) -> bool:
    """Whether a text reads as English: at least one word in twenty is a common English function word
    (a headline-like "Mk Dons teenager Dele Alli picked up the award" has one in eleven).

    A text of fewer than eight words (numbers aside) is too short to tell: ``default``.

    >>> looks_english(words("The bridge cost 40 million euros and took three years to build."))
    True
    >>> looks_english(words("Die Brücke kostete 40 Millionen Euro und wurde in drei Jahren gebaut."))
    False
    >>> looks_english(words("Le pont a coûté 40 millions d'euros et a été construit en trois ans."))
    False
    >>> looks_english(words("Ana Ruiz opened it."), default=False)
    False
    """
    plain = [w for w in ws if w.number is None]
    if len(plain) < 8:
        return default
    return sum(w.text in _ENGLISH for w in plain) / len(plain) >= 0.05
