"""Every error the library raises on purpose. Messages say what to do next.

Third-party exceptions are translated into these once, at the boundary that
calls the third party; only the CLI and the UI turn them into user messages.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class: catching it catches every expected failure of the pipeline."""

    exit_code = 2


class InputError(QAError):
    """The user's question or arguments are unusable."""


class EmptyQuestionError(InputError):
    def __init__(self) -> None:
        super().__init__(
            "The question is empty. Type a question about the articles, for example: Who stayed in Washington?"
        )


class QuestionTooLongError(InputError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is {length:,} characters long; the limit is {limit:,}. Shorten the question."
        )


class DocumentError(QAError):
    """A document cannot be ingested."""


class MissingFileError(DocumentError):
    def __init__(self, path: str) -> None:
        super().__init__(f"No such file: {path}. Check the path and try again.")


class UnsupportedFileTypeError(DocumentError):
    def __init__(self, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"Unsupported file type: {path}. Supported types are {', '.join(allowed)}; convert the file to one of them."
        )


class EmptyDocumentError(DocumentError):
    def __init__(self, name: str) -> None:
        super().__init__(f"The document {name} has no text to index. Check that it is the right file.")


class UndecodableDocumentError(DocumentError):
    def __init__(self, name: str, why: str = "") -> None:
        if why:
            super().__init__(f"The document {name} cannot be read: {why}. Check that it is the right file.")
        else:
            super().__init__(
                f"The document {name} is not UTF-8 text (it may be binary). Save it as UTF-8 text, Markdown or HTML."
            )


class NoTextLayerError(DocumentError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"The PDF {name} has no text layer (it is probably scanned images). Run OCR on it first "
            "(for example `ocrmypdf in.pdf out.pdf`), or save the article as text."
        )


class UnknownDocumentError(InputError):
    def __init__(self, missing: list[str], known: int) -> None:
        super().__init__(
            f"Not in the index: {', '.join(missing)}. `qa docs` lists the {known:,} indexed document id(s)."
        )


class LinkError(DocumentError):
    """A link cannot be fetched, or what it returns cannot be indexed."""


class BadLinkError(LinkError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"Cannot fetch {url}: {why}. Give a full http:// or https:// address.")


class PrivateLinkError(LinkError):
    def __init__(self, url: str, address: str, env: str) -> None:
        super().__init__(
            f"Refusing to fetch {url}: it resolves to {address}, an address on this machine or its private "
            f"network, and the chat is served to other machines. The operator can allow such links by "
            f"setting {env}=1."
        )


class FetchError(LinkError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"Could not fetch {url}: {why}. Check the address, or try again later.")


class LinkContentTypeError(LinkError):
    def __init__(self, url: str, content_type: str) -> None:
        super().__init__(
            f"The link {url} returned {content_type or 'an unknown content type'}; only web pages (HTML), plain "
            "text, Markdown, PDF and RSS/Atom feeds can be indexed."
        )


class LinkedFileError(DocumentError):
    def __init__(self, name: str, target: str = "") -> None:
        if not target:
            super().__init__(f"The file {name} is a link; an upload must be the file itself.")
        else:
            super().__init__(
                f"The file {name} is a link to {target}, outside the folder it is in; qa does not follow links "
                "out of the folders it indexes. Give the file's own path if you mean to index it."
            )


class FileTooLargeError(DocumentError):
    def __init__(self, name: str, size: int, limit: int, *, at_least: bool = False) -> None:
        more = "more than " if at_least else ""
        super().__init__(
            f"The document {name} is {more}{size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB. "
            "Split it into smaller files or raise QA_MAX_FILE_MB."
        )


class IndexError_(QAError):
    """An index on disk is missing, from another configuration, or damaged."""


class IndexNotFoundError(IndexError_):
    def __init__(self, path: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"No index at {path}{extra}. Build one with: qa index PATH... --index-dir {path}")


class IndexMismatchError(IndexError_):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"The index at {path} does not match this configuration: {what}. "
            f"Rebuild it with: qa index PATH... --index-dir {path} --rebuild"
        )


class IndexCorruptError(IndexError_):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"The index file {path} is damaged ({what}). Rebuild the index with: qa index PATH... --rebuild"
        )


class IndexWriteError(IndexError_):
    """The index folder cannot be written: not a folder, not ours, read-only, or out of space."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"Cannot write the index at {path}: {what}")


class IndexBusyError(IndexError_):
    def __init__(self, path: str, holder: str, seconds: float) -> None:
        super().__init__(
            f"Another qa process{holder} has been writing the index at {path} for more than {seconds:g} s. "
            "Wait for it to finish and run the command again, or raise QA_LOCK_TIMEOUT."
        )


class LLMError(QAError):
    """The language model backend failed."""


class OllamaUnavailableError(LLMError):
    def __init__(self, host: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"Ollama is not reachable at {host}{extra}. Start it with `ollama serve` "
            "(install it from ollama.com), set OLLAMA_HOST, or use --llm extractive."
        )


class ModelNotFoundError(LLMError):
    def __init__(self, model: str) -> None:
        super().__init__(f"The Ollama model {model!r} is not installed. Run `ollama pull {model}`.")


class GenerationTimeoutError(LLMError):
    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(
            f"Ollama at {host} did not answer within {seconds:g} s. Check that the server is not stuck, "
            "or raise QA_OLLAMA_TIMEOUT."
        )


class AnswerTimeoutError(LLMError):
    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(
            f"Ollama at {host} was still answering after {seconds:g} s, so the answer was stopped. Try again, "
            "ask a narrower question, or raise QA_ANSWER_TIMEOUT."
        )


class AnswerTooLongError(LLMError):
    def __init__(self, host: str, limit: int) -> None:
        super().__init__(
            f"Ollama at {host} sent more than {limit:,} characters, so the answer was stopped. Try again, or "
            "raise QA_MAX_ANSWER_CHARS."
        )


class ModelBusyError(LLMError):
    def __init__(self, slots: int) -> None:
        super().__init__(
            f"All {slots} of this chat's model slots are answering other questions. Try again in a moment."
        )


class GenerationInterruptedError(LLMError):
    def __init__(self, host: str, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(f"The connection to Ollama at {host} broke while it was answering{extra}. Try again.")


class OllamaRequestError(LLMError):
    def __init__(self, host: str, status: int, detail: str) -> None:
        super().__init__(
            f"Ollama at {host} refused the request (HTTP {status}: {detail}). "
            "Check the server log (`ollama serve`), or use --llm extractive."
        )


class PromptTemplateError(QAError):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"The prompt template {path} is invalid: {what}. Fix the file or restore it from git.")


class ConfigError(QAError):
    """A setting has a value that cannot work."""
