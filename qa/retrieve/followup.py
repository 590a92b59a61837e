"""Follow-up questions: "And what did he reject?" is searched with whom "he" refers to.

Deterministic and cheap (no model): a pronoun is replaced by the latest name the conversation
offers for it, or the previous question's key words are appended.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from qa.cite.markers import strip_markers
from qa.types import ABSTAIN_TEXT, Retrieval, Turn

#: In a follow-up, how much the standalone query's ranking counts beside the question's own (``fuse``).
CONTEXT_WEIGHT = 0.3

_STOP = frozenset(
    """a an the and or but so of to in on at by for with from about as into over after before than then
    is are was were be been being do does did done have has had can could would should will shall may might
    must what who whom whose which when where why how not no yes also just only very more most some any all
    i me my we our you your one ones else again other""".split()
)
_PERSONAL = frozenset("he she him her his hers".split())
_SUBSTITUTE = _PERSONAL | frozenset("they them their theirs it its there".split())  # replaced by a referent
_ANAPHORA = frozenset(
    "he she it they him her them his hers its their theirs this that these those there former latter".split()
)
#: Capitalised words that are not names of people, places or things a follow-up refers to.
_NOT_NAMES = frozenset(
    """january february march april may june july august september october november december monday tuesday
    wednesday thursday friday saturday sunday mr mrs ms dr sir madam president minister senator governor mayor
    prime secretary chief former tory labour democrat democratic republican""".split()
)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|so|then|what about|how about|what else)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][\w\u2019'.\-]*")
_MAX_CONTEXT_TERMS = 12
#: A question with at most this many content words is elliptical in a conversation ("On which beach?",
#: "Where is that court?"): it is searched with the previous question's words too.
_ELLIPTICAL = 1
#: "there" that only introduces a subject ("how many cases were there", "is there a plan", "there were
#: fires") refers to no place and is kept.
_BE = r"(?:is|are|was|were|be|been|being|isn['\u2019]t|aren['\u2019]t|wasn['\u2019]t|weren['\u2019]t)"
_EXISTENTIAL_AFTER = re.compile(
    rf"^\s+(?:{_BE}|will|would|could|might|may|must|should|has|have|had|seems?|remains?)\b|^['\u2019]s\b",
    re.IGNORECASE)
_EXISTENTIAL_BEFORE = re.compile(rf"\b{_BE}\s+$", re.IGNORECASE)
_QUANTIFIER_AFTER = re.compile(
    r"^\s+(?:a|an|any|no|some|many|more|much|enough|anything|anyone|anybody|nothing|still|also|ever)\b",
    re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow\s+(?:many|much)\b", re.IGNORECASE)


def _existential(match: re.Match[str]) -> bool:
    """Is this "there" the existential one ("were there", "there is"), not a place?"""
    text, start, end = match.string, match.start(), match.end()
    before, after = text[:start], text[end:]
    if _EXISTENTIAL_AFTER.search(after):
        return True
    return bool(_EXISTENTIAL_BEFORE.search(before)) and bool(
        _QUANTIFIER_AFTER.search(after) or _HOW_MANY.search(before))


def _words(text: str) -> list[str]:
    """Words, with a possessive's "'s" dropped ("Pincher’s" → "Pincher")."""
    return [re.sub(r"[\u2019']s$", "", w).strip(".'\u2019-") for w in _WORD.findall(text)]


def _is_content(word: str) -> bool:
    """A word that says what is asked about: neither a stop word nor one pointing back ("he", "there")."""
    return word.lower() not in _STOP and word.lower() not in _ANAPHORA


def _is_follow_up(question: str) -> bool:
    words = [w.lower() for w in _words(question)]
    content = [w for w in words if _is_content(w)]
    elliptical = len(content) <= _ELLIPTICAL and not _name_runs(question)  # "On which beach?", not "Where is Rafah?"
    return bool(_FOLLOW_UP_START.match(question)) or any(w in _ANAPHORA for w in words) or elliptical


def _name_runs(text: str) -> list[list[str]]:
    """Runs of capitalised words: "Israeli Defense Minister Yoav Gallant".

    A capital that only starts a sentence ("Despite the…", "Hamas welcomed…") is not evidence
    of a name, so a run that is just one sentence-initial word is dropped; "Yoav Gallant." is kept.
    """
    text = strip_markers(text)
    runs: list[list[str]] = []
    run: list[str] = []
    run_initial = False
    initial = True

    def close() -> None:
        nonlocal run
        if run and not (len(run) == 1 and run_initial):
            runs.append(run)
        run = []

    for token in text.split():
        word = token.strip("\u201c\u201d\"'()[],;:!?")
        if word.count(".") < 2:  # keep "U.S.", drop a full stop
            word = word.rstrip(".")
        if word.endswith(("\u2019s", "'s")):
            word = word[:-2]
        lowered = word.lower()
        if word[:1].isupper() and lowered not in _STOP and lowered not in _ANAPHORA and lowered not in _NOT_NAMES:
            if not run:
                run_initial = initial
            run.append(word)
        else:
            close()
        if token[-1:] in ",;:)\u201d\"":
            close()
        initial = token.rstrip("\u201d\"')").endswith((".", "!", "?", ":")) and token.count(".") < 2
        if initial:
            close()
    close()
    return runs


_PLACE_BEFORE = frozenset("in at to from near into across inside outside".split())
#: A person named after their title: "Defense Minister Yoav Gallant", "spokesman Zabiullah Mujahid".
_TITLED = re.compile(
    r"\b(?:[Mm]inister|[Pp]resident|[Gg]overnor|[Ss]enator|[Mm]ayor|[Ss]ecretary|[Ss]pokes(?:man|woman|person)|[Ll]eader"
    r"|CEO|[Cc]hief|[Dd]irector|[Jj]udge|[Cc]oach|[Ss]peaker|MP|Rep\.|Sen\.|Gov\.|Dr\.|Mr\.|Mrs\.|Ms\.)\s+"
    r"((?:[A-Z][\w\u2019'-]+\s+){0,2}[A-Z][\w\u2019'-]+)"
)
_GROUP = frozenset("they them their theirs".split())
_THING = frozenset("it its".split())
#: A definite description pointing back ("that strike", "the company", "the same state", "this man").
_POINTS_BACK = re.compile(r"\b(?:that|this|these|those|the same)\s+[a-z]+|\bthe (?:company|group|man|woman|city|"
                          r"country|state|storm|president|official|firm|buyer|seller|team|party|agency|court)\b",
                          re.IGNORECASE)


#: Descriptions pointing back at a person, or at a place: they take only a person's, or a place's, name.
_POINTS_AT_PERSON = re.compile(r"\b(?:that|this|the|the same)\s+(?:man|woman|person|president|official|buyer|seller"
                               r"|leader|minister|suspect|victim|owner|winner|player|singer|actor)\b", re.IGNORECASE)
_POINTS_AT_PLACE = re.compile(r"\b(?:that|this|the|the same)\s+(?:city|country|state|town|village|region|island"
                              r"|nation|place)\b", re.IGNORECASE)


def _people(answer: str, question: str) -> list[str]:
    """The people an answer names that its question did not: titled ones ("Speaker Mohamed Nasheed"), then
    names of two or more words.

    >>> _people("It landed in Maldives after former President Mohamed Nasheed intervened.", "Who helped?")
    ['Mohamed Nasheed']
    """
    runs = [n for n in _new_names(answer, question) if len(n.split()) >= 2]
    return list(dict.fromkeys([*_titled(answer, question), *runs]))


def _titled(answer: str, question: str) -> list[str]:
    """The names an answer gives after a title ("Defense Minister Yoav Gallant"), not already in the question."""
    asked = question.lower()
    return list(dict.fromkeys(m.group(1) for m in _TITLED.finditer(answer) if m.group(1).lower() not in asked))


def _runs_text(runs: Sequence[list[str]]) -> list[str]:
    return [" ".join(r) for r in runs]


def _new_names(answer: str, question: str) -> list[str]:
    """Names an answer gives that its question did not contain (the answer's own contribution)."""
    asked = {w.lower() for w in _words(question)}
    return [" ".join(r) for r in _name_runs(answer) if not all(w.lower() in asked for w in r)]


def _place(text: str) -> str | None:
    """A capitalised run right after "in", "at", "to"…: "in Coeur d'Alene, Idaho" → "Coeur d'Alene".

    A month, a weekday or a title is no place: "flee to in July 2022" names none.

    >>> _place("Where did he flee in July 2022, and to Maldives?"), _place("It fell in Coeur d'Alene, Idaho.")
    ('Maldives', "Coeur d'Alene")
    """
    tokens = strip_markers(text).split()
    for k, token in enumerate(tokens[:-1]):
        if token.lower() in _PLACE_BEFORE:
            run = []
            for word in tokens[k + 1 :]:
                w = word.strip("\u201c\u201d\"'()[],;:!?.")
                particle = re.match(r"[a-z]{1,3}['\u2019][A-Z]", w)  # d'Alene, l'Aquila
                if not (w[:1].isupper() or particle) or w.lower() in _STOP or w.lower() in _NOT_NAMES:
                    break
                run.append(w)
                if word[-1:] in ",;:" or (word.endswith(".") and word.count(".") < 2):  # "O.B. Curtis" goes on
                    break
            if run:
                return " ".join(run)
    return None


def _referent(pronoun: str, turns: Sequence[tuple[str, str]]) -> str | None:
    """What a pronoun most likely means, looking back from the latest ``(question, answer)`` turn.

    "he"/"she" want a person (two or more capitalised words): first a name the answer gave, then one the
    question named. "there" wants a place. "it"/"they" want what the question was about, then what the
    answer named.
    """
    for question, answer in reversed(turns):
        if pronoun == "there":
            place = _place(question) or _place(answer)
            if place:
                return place
            continue
        if pronoun in _PERSONAL:  # only an unambiguous person: one titled or two-word name the answer gave
            titled = _titled(answer, question)
            if len(titled) == 1:
                return " ".join(titled[0].split()[-2:])
            for names in (_new_names(answer, question), _runs_text(_name_runs(question))):
                people = list(dict.fromkeys(" ".join(n.split()[-2:]) for n in names if len(n.split()) >= 2))
                if len(people) == 1:
                    return people[0]
                if people:
                    return None
            continue
        names = _runs_text(_name_runs(question)) or _new_names(answer, question)
        if names:
            return names[0]
    return None


def _topic(turns: Sequence[tuple[str, str]], previous: str | None, question: str) -> list[str]:
    """The conversation's entities a follow-up carries: the latest question's names (as made standalone),
    and, for a definite description ("that man", "the company"), the names the latest answer gave."""
    latest_q, latest_a = turns[-1]
    seen = {w.lower() for w in _words(question)}
    if sum(map(_is_content, seen)) <= _ELLIPTICAL:  # "Why?", "On which beach?": the topic is all of it
        return [w for w in _words(previous or latest_q) if _is_content(w) and w.lower() not in seen]
    names = _runs_text(_name_runs(latest_q))[:3]
    person = _POINTS_AT_PERSON.search(question) or any(w in _PERSONAL for w in seen)
    at_place = _POINTS_AT_PLACE.search(question)
    if person or at_place or _POINTS_BACK.search(question):
        place = _place(latest_a) if at_place else None
        kind = _people(latest_a, latest_q) if person else [place] if place else []
        names += (kind or _new_names(latest_a, latest_q))[:2]  # "that man": Mohamed Nasheed, not the Maldives
    out: list[str] = []
    for name in names:
        if not all(w.lower() in seen for w in _words(name)):
            out.append(name)
            seen.update(w.lower() for w in _words(name))
    return out


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """Rewrite a follow-up into a retrieval query that stands alone; other questions pass unchanged.

    A follow-up has a pronoun, a leading "and"/"what about", a definite description pointing back, or at
    most one content word. A pronoun is replaced by what it most likely means (``_referent``); the names of the
    conversation's topic (the latest question's, made standalone in its own turn) are appended, and the
    names the latest answer gave when the question points back at them. The previous answer's sentence
    itself is never added: a follow-up asks something new. Deterministic and cheap, no model, no
    recursion over the history.

    >>> h = [Turn("user", "Who stayed in Washington?"), Turn("assistant", "Minister Yoav Gallant stayed. [1]")]
    >>> standalone_query("And what did he reject?", h)
    'And what did Yoav Gallant reject? Washington'
    >>> standalone_query("Where is Rafah?", h)
    'Where is Rafah?'
    """
    users = [i for i, t in enumerate(history) if t.role == "user" and t.content.strip()]
    if users and history[users[-1]].content.strip() == question.strip():  # history may end with this question
        users.pop()
    turns: list[tuple[str, str]] = []  # (question, its first answer that is not an abstention)
    for n, i in enumerate(users):
        end = users[n + 1] if n + 1 < len(users) else len(history)
        said = [t.content for t in history[i + 1 : end] if t.role == "assistant" and not is_abstention_text(t.content)]
        turns.append((history[i].content.strip(), said[0] if said else ""))
    previous: str | None = None  # the latest earlier question, made standalone in its own turn
    for k, (asked, _) in enumerate(turns):
        previous = _rewrite(asked, turns[:k], previous)
    return _rewrite(question, turns, previous)


def _rewrite(question: str, turns: Sequence[tuple[str, str]], previous: str | None) -> str:
    """``question`` made standalone given the earlier ``turns`` and the standalone form of the last one."""
    if not turns or not (_is_follow_up(question) or _POINTS_BACK.search(question)):
        return question

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.lower() == "there" and _existential(match):
            return word
        referent = _referent(word.lower(), turns)
        if referent is None:
            return word
        possessive = word.lower() in ("his", "hers", "its", "their", "theirs")
        return f"{referent}\u2019s" if possessive else referent

    rewritten = re.sub(r"\b(" + "|".join(sorted(_SUBSTITUTE)) + r")\b", replace, question, flags=re.IGNORECASE)
    topic = _topic(turns, previous, rewritten)[:_MAX_CONTEXT_TERMS]
    return f"{rewritten} {' '.join(topic)}" if topic else rewritten


def fuse(alone: Retrieval, rewritten: Retrieval, k: int, weight: float = CONTEXT_WEIGHT) -> Retrieval:
    """A follow-up's own words decide, the conversation's context helps: each sentence scores its score for
    the question as asked plus ``weight`` times its score for the standalone query (a sentence missing
    from one list gets that list's lowest score minus one), rescaled to the first list's units.
    The confidence is the better of the two."""
    table: dict[tuple[str, int], list[Any]] = {}
    for which, found in enumerate((alone, rewritten)):
        for h in found.hits:
            table.setdefault((h.sentence.doc_id, h.sentence.n), [h, None, None])[1 + which] = h.score
    floor = [min((h.score for h in found.hits), default=0.0) - 1.0 for found in (alone, rewritten)]
    scored = [(h, ((a if a is not None else floor[0]) + weight * (b if b is not None else floor[1])) / (1 + weight))
              for h, a, b in table.values()]
    scored.sort(key=lambda t: -t[1])
    hits = tuple(replace(h, score=score, rank=i) for i, (h, score) in enumerate(scored[:k]))
    best = alone if alone.confidence - alone.threshold >= rewritten.confidence - rewritten.threshold else rewritten
    return Retrieval(query=rewritten.query, hits=hits, confidence=best.confidence, threshold=best.threshold)


def is_abstention_text(text: str) -> bool:
    """Is a previous answer the abstention sentence (whose words name nobody)?"""
    return text.strip().lower().startswith(ABSTAIN_TEXT.lower().rstrip("."))
