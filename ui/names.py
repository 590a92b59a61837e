"""What the chat calls documents: their ids, except that no id shows where files live on the server.

A file indexed from outside the folder ``qa index`` ran in has its absolute path as its id (so two
``story.txt`` from two folders stay two documents, whichever run indexed them). Everyone using the chat sees
document names (the document list in ``/config``, citations, the source panel, notes), so the chat names such a
document by the shortest end of its path that no other document's name has (``story.txt``, or ``b/story.txt``
beside ``a/story.txt``), and maps those names back to ids for questions and removals. Other ids (relative
paths, upload names, URLs) are their own names.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace

from qa.types import Answer, Document

_ABSOLUTE = re.compile(r"^(?:/|[A-Za-z]:[/\\]|\\\\)")  # /srv/…, C:/…, \\server\…


def is_server_path(doc_id: str) -> bool:
    """Whether a document id is an absolute path on the server.

    >>> is_server_path("/srv/news/a.txt"), is_server_path("C:/news/a.txt"), is_server_path("news/a.txt")
    (True, True, False)
    >>> is_server_path("https://example.com/a")
    False
    """
    return bool(_ABSOLUTE.match(doc_id))


def _parts(doc_id: str) -> list[str]:
    return [p for p in re.split(r"[/\\]", doc_id) if p and not p.endswith(":")]


def public_names(doc_ids: Iterable[str]) -> dict[str, str]:
    """``{id: name}``: server paths shortened to the fewest trailing parts that tell them apart.

    >>> names = public_names(["/srv/a/story.txt", "/srv/b/story.txt", "/srv/c/notes.txt", "notes.txt", "/x/y.txt"])
    >>> [names[i] for i in ("/srv/a/story.txt", "/srv/b/story.txt", "/srv/c/notes.txt", "notes.txt", "/x/y.txt")]
    ['a/story.txt', 'b/story.txt', 'c/notes.txt', 'notes.txt', 'y.txt']
    >>> public_names(["/srv/a.txt", "a.txt"])["/srv/a.txt"], public_names(["/a.txt", "a.txt"])["/a.txt"]
    ('srv/a.txt', 'a.txt (2)')
    """
    ids = list(dict.fromkeys(doc_ids))
    plain = [i for i in ids if not is_server_path(i)]
    paths = [i for i in ids if is_server_path(i)]
    names = {i: i for i in plain}
    taken = set(plain)
    depth = dict.fromkeys(paths, 1)
    tails: dict[str, str] = {}
    while True:  # every clashing name grows by one part at a time: at most as many rounds as path parts
        tails = {i: "/".join(_parts(i)[-depth[i]:]) for i in paths}
        counts = Counter(tails.values())
        grown = False
        for i in paths:
            if (counts[tails[i]] > 1 or tails[i] in taken) and depth[i] < len(_parts(i)):
                depth[i] += 1
                grown = True
        if not grown:
            break
    for i in paths:  # still alike only when whole paths are (``/srv/a.txt`` and ``srv/a.txt``): numbered
        name, n = tails[i], 2
        while name in taken:
            name = f"{tails[i]} ({n})"
            n += 1
        names[i] = name
        taken.add(name)
    return names


class PublicNames:
    """The chat's names for one set of documents (an index's), both ways."""

    def __init__(self, documents: Mapping[str, Document]) -> None:
        self.source = documents
        self.by_id = public_names(documents)
        self.hides = any(i != n for i, n in self.by_id.items())
        self.ids = {n: i for i, n in self.by_id.items()}
        self.documents: Mapping[str, Document] = (
            {self.by_id[i]: replace(d, doc_id=self.by_id[i]) for i, d in documents.items()} if self.hides
            else documents
        )

    def name(self, doc_id: str) -> str:
        return self.by_id.get(doc_id, doc_id)

    def doc_ids(self, names: Iterable[str]) -> list[str]:
        """The ids of names the chat showed; a name it never showed stays as it is (and is refused later)."""
        return [self.ids.get(n, n) for n in names]

    def answer(self, answer: Answer) -> Answer:
        """The answer with its citations and related passages naming documents by their public names."""
        if not self.hides or not (answer.citations or answer.related):
            return answer
        return replace(answer, citations=[replace(c, doc_id=self.name(c.doc_id)) for c in answer.citations],
                       related=[replace(c, doc_id=self.name(c.doc_id)) for c in answer.related])

    def scrub(self, text: str) -> str:
        """A message with every server path of a document replaced by the document's name."""
        if not self.hides:
            return text
        for doc_id in sorted((i for i, n in self.by_id.items() if i != n), key=len, reverse=True):
            text = text.replace(doc_id, self.by_id[doc_id])
        return text


_cache: tuple[Mapping[str, Document], PublicNames] | None = None
_cache_lock = threading.Lock()


def names_of(documents: Mapping[str, Document]) -> PublicNames:
    """The names for ``documents`` (an index's mapping: a new index, a new mapping), computed once per index."""
    global _cache
    with _cache_lock:
        if _cache is None or _cache[0] is not documents:
            _cache = (documents, PublicNames(documents))
        return _cache[1]
