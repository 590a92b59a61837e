"""Fetching a link over HTTP(S), with limits: time, size, redirects, content types, and which addresses.

Only ``http`` and ``https``. The host is resolved once per hop and every address it resolves to is
checked; the connection then goes to a checked address (the ``Host`` header and, for HTTPS, the
certificate check still use the host name), so a name that resolves to a public address when checked
and to a private one when connecting (DNS rebinding) cannot slip through. Redirects are followed by
hand, each hop checked the same way. The whole fetch, redirects included, has one deadline, so a
server that trickles bytes cannot hold it open. Standard-library errors are translated here into
``qa.errors`` (``LinkError`` and its kinds).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from qa.errors import BadLinkError, FetchError, FileTooLargeError, PrivateLinkError

if TYPE_CHECKING:
    from qa.config import Settings

#: The environment variable that lets a chat served to other machines fetch private addresses.
ALLOW_PRIVATE_ENV = "QA_ALLOW_PRIVATE_LINKS"
USER_AGENT = "qa-news/0.2 (+local question answering over news articles)"
ACCEPT = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/xml;q=0.9,"\
         "text/plain;q=0.8,text/markdown;q=0.8,application/pdf;q=0.8,*/*;q=0.1"


@dataclass(frozen=True)
class FetchPolicy:
    """The limits of one fetch."""

    timeout: float = 20.0  # seconds for the whole fetch, redirects included
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    allow_private: bool = True  # loopback, private, link-local...: False when the chat is served to others


def fetch_policy(settings: Settings, *, served_remotely: bool = False) -> FetchPolicy:
    """The limits for fetching links: private addresses are refused only for a chat served to other
    machines (``--allow-remote``), unless ``QA_ALLOW_PRIVATE_LINKS`` allows them."""
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_bytes=settings.max_file_bytes,
        allow_private=settings.allow_private_links or not served_remotely,
    )


@dataclass(frozen=True)
class Fetched:
    """What a link returned."""

    url: str  # as asked for (without a fragment)
    final_url: str  # after redirects
    content_type: str  # media type, lower case, no parameters ("" when the server sent none)
    charset: str | None
    data: bytes


def normalize_url(url: str) -> str:
    """A link as a document id: scheme and host in lower case, no fragment, a bare host gets ``/``.

    >>> normalize_url("HTTPS://News.Example/a?b=1#top"), normalize_url("http://x.example")
    ('https://news.example/a?b=1', 'http://x.example/')
    """
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def is_link(text: str) -> bool:
    """Whether a command-line argument is a link rather than a path.

    >>> is_link("https://x.example/a"), is_link("news/a.html"), is_link("ftp://x/y")
    (True, False, True)
    """
    scheme = urlsplit(text.strip()).scheme.lower()
    return len(scheme) > 1 and "://" in text


def _check_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadLinkError(url, f"only http and https links can be fetched, not {parts.scheme or 'a bare name'}")
    if not parts.hostname:
        raise BadLinkError(url, "it names no host")
    if parts.username or parts.password:
        raise BadLinkError(url, "links with a user name or password are not fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadLinkError(url, "its port is not a number from 1 to 65535") from None
    return parts.scheme, parts.hostname, port


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local, reserved...).

    >>> [is_public(a) for a in ("8.8.8.8", "127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "::ffff:127.0.0.1")]
    [True, False, False, False, False, False]
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str, host: str, port: int, policy: FetchPolicy) -> list[str]:
    """Every address ``host`` resolves to, each checked against the policy."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(url, f"the host name {host} could not be resolved ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not policy.allow_private:
        for address in addresses:
            if not is_public(address):
                raise PrivateLinkError(url, address, ALLOW_PRIVATE_ENV)
    if not addresses:
        raise FetchError(url, f"the host name {host} has no address")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a given, already checked address (the host name is only the Host header)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is still checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET ``url`` within the policy's limits; every failure is a ``LinkError`` that says what happened."""
    asked = normalize_url(url)
    deadline = time.monotonic() + policy.timeout
    current = asked
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port = _check_url(current)
        addresses = resolve(current, host, port, policy)
        status, headers, data = _get(current, scheme, host, port, addresses, deadline, policy)
        if status in (301, 302, 303, 307, 308):
            location = headers.get("Location")
            if not location:
                raise FetchError(current, f"HTTP {status} without a Location to go to")
            current = normalize_url(urljoin(current, location.strip()))
            continue
        if status >= 400 or status < 200:
            raise FetchError(current, f"the server answered HTTP {status}")
        msg = Message()
        msg["Content-Type"] = headers.get("Content-Type") or ""
        charset = msg.get_param("charset")
        return Fetched(url=asked, final_url=current,
                       content_type=msg.get_content_type() if headers.get("Content-Type") else "",
                       charset=str(charset) if isinstance(charset, str) else None, data=data)
    raise FetchError(asked, f"more than {policy.max_redirects} redirects")


def _remaining(url: str, deadline: float, policy: FetchPolicy) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(url, f"no complete answer within {policy.timeout:g} s (QA_FETCH_TIMEOUT)")
    return left


def _get(
    url: str, scheme: str, host: str, port: int, addresses: list[str], deadline: float, policy: FetchPolicy
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to the first checked address that accepts a connection; the body of a 2xx answer."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last: Exception | None = None
    for address in addresses:
        kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
        conn = kind(host, port, address, timeout=_remaining(url, deadline, policy))
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": ACCEPT,
                                               "Accept-Encoding": "identity"})
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            last = exc
            continue
        try:
            return _answer(url, conn, deadline, policy)
        finally:
            conn.close()
    raise FetchError(url, _why(last))


def _answer(
    url: str, conn: http.client.HTTPConnection, deadline: float, policy: FetchPolicy
) -> tuple[int, http.client.HTTPMessage, bytes]:
    try:
        response = conn.getresponse()
        if not 200 <= response.status < 300:
            return response.status, response.headers, b""
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > policy.max_bytes:
            raise FileTooLargeError(url, int(length), policy.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(_remaining(url, deadline, policy))
            chunk = response.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > policy.max_bytes:  # the limit crossed, not the bytes read so far (chunks vary in size)
                raise FileTooLargeError(url, policy.max_bytes, policy.max_bytes, at_least=True)
        return response.status, response.headers, b"".join(chunks)
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline or isinstance(exc, TimeoutError):
            raise FetchError(url, f"no complete answer within {policy.timeout:g} s (QA_FETCH_TIMEOUT)") from None
        raise FetchError(url, _why(exc)) from None


def _why(exc: Exception | None) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"the secure connection failed ({exc.reason or exc})"
    if isinstance(exc, TimeoutError):
        return "the server did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    return f"the connection failed ({exc})" if exc else "no address could be reached"
