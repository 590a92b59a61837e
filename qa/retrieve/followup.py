"""Follow-up questions: "And what did he reject?" is searched with whom "he" refers to.

Deterministic and cheap (no model): a pronoun is replaced by the latest name the conversation
offers for it, or the previous question's key words are appended.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.cite.markers import strip_markers
from qa.types import ABSTAIN_TEXT, Turn

_STOP = frozenset(
    """a an the and or but so of to in on at by for with from about as into over after before than then
    is are was were be been being do does did done have has had can could would should will shall may might
    must what who whom whose which when where why how not no yes also just only very more most some any all
    i me my we our you your one ones else again other""".split()
)
_PERSONAL = frozenset("he she him her his hers".split())
_SUBSTITUTE = _PERSONAL | frozenset("they them their theirs it its there".split())
_ANAPHORA = frozenset(
    "he she it they him her them his hers its their theirs this that these those there former latter".split()
)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|so|then|what about|how about|what else)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][\w\u2019'.\-]*")
_MAX_CONTEXT_TERMS = 12


def _words(text: str) -> list[str]:
    return [w.strip(".'\u2019-") for w in _WORD.findall(text)]


def _is_follow_up(question: str) -> bool:
    words = [w.lower() for w in _words(question)]
    content = [w for w in words if w not in _STOP and w not in _ANAPHORA]
    return bool(_FOLLOW_UP_START.match(question)) or any(w in _ANAPHORA for w in words) or not content


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
        if word[:1].isupper() and lowered not in _STOP and lowered not in _ANAPHORA:
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


def _referent(pronoun: str, turns: Sequence[tuple[str, str]]) -> str | None:
    """Whom a pronoun most likely means, looking back from the latest ``(question, answer)`` turn.

    "he"/"she" want a person (two or more capitalised words), answers first: "Who stayed?" is
    answered by a name. "it"/"they"/"there" want whatever the question was about, questions first.
    """
    for question, answer in reversed(turns):
        texts = (answer, question) if pronoun in _PERSONAL else (question, answer)
        for text in texts:
            runs = _name_runs(text)
            if pronoun in _PERSONAL:
                runs = [r[-2:] for r in runs if len(r) >= 2]
            if runs:
                return " ".join(runs[0])
    return None


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """Rewrite a follow-up into a retrieval query that stands alone; other questions pass unchanged.

    A follow-up has a pronoun, a leading "and"/"what about", or no content word. A pronoun is
    replaced by whom it most likely means (see ``_referent``: the latest turn that names someone
    or something); when none is found, the previous question's key words (itself made standalone)
    are appended instead. Deterministic and cheap: no model involved, no recursion over the history.

    >>> h = [Turn("user", "Who stayed in Washington?"), Turn("assistant", "Minister Yoav Gallant stayed. [1]")]
    >>> standalone_query("And what did he reject?", h)
    'And what did Yoav Gallant reject?'
    >>> standalone_query("Why?", h)
    'Why? stayed Washington'
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
    if not turns or previous is None or not _is_follow_up(question):
        return question
    substituted = False

    def replace(match: re.Match[str]) -> str:
        nonlocal substituted
        referent = _referent(match.group(0).lower(), turns)
        if referent is None:
            return match.group(0)
        substituted = True
        return referent

    rewritten = re.sub(r"\b(" + "|".join(sorted(_SUBSTITUTE)) + r")\b", replace, question, flags=re.IGNORECASE)
    if substituted:
        return rewritten
    seen = {w.lower() for w in _words(question)}
    terms: list[str] = []
    for term in _words(previous):
        if term and term.lower() not in _STOP and term.lower() not in _ANAPHORA and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    if not terms:
        return question
    return f"{question} {' '.join(terms[:_MAX_CONTEXT_TERMS])}"


def is_abstention_text(text: str) -> bool:
    """Is a previous answer the abstention sentence (whose words name nobody)?"""
    return text.strip().lower().startswith(ABSTAIN_TEXT.lower().rstrip("."))
