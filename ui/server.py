"""Serving the chat: loopback by default, a login when a password is configured, and ``qa serve``."""

import ctypes
import hmac
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable

import gradio as gr
from starlette.middleware import Middleware

from qa import config
from qa.errors import ConfigError
from qa.pipeline import Pipeline

from .api import ApiArguments
from .app import build_app, upload_limit
from .assets import CSS, HEAD
from .security import Guard
from .sessions import SESSION_CAPACITY, ForgetFinishedCalls

AUTH_USER_ENV = "QA_AUTH_USER"
AUTH_PASSWORD_ENV = "QA_AUTH_PASSWORD"
M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2
SERVER_LOG = "qa-serve"  # the name of the handler that writes the server's log



def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("::1")
    (True, True, False, True)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless the operator asked for it explicitly."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"Refusing to listen on {host}: other machines could reach the chat. Use --host 127.0.0.1, "
            f"or pass --allow-remote (and set {AUTH_PASSWORD_ENV} to require a login)."
        )


def login_check(settings: config.Settings) -> Callable[[str, str], bool] | None:
    """A login check when a password is configured (``QA_AUTH_PASSWORD``, user ``QA_AUTH_USER``); else None."""
    password = settings.auth_password
    if not password:
        return None
    user = settings.auth_user or "qa"

    def check(username: str, given: str) -> bool:
        ok_user = hmac.compare_digest(username.encode(), user.encode())
        ok_password = hmac.compare_digest(given.encode(), password.encode())
        return ok_user and ok_password

    return check


def served_names(host: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names a browser may call the chat by (besides IP addresses and ``localhost``): the listening
    address, this machine's names when it listens beyond loopback, and ``QA_ALLOWED_HOSTS``."""
    names = [host, *extra]
    if not is_loopback(host):
        names += [socket.gethostname(), socket.getfqdn()]
    return tuple(n for n in names if n)


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: Callable[[str, str], bool] | None = None,
    block: bool = False,
    quiet: bool = True,
    allowed_hosts: tuple[str, ...] = (),
) -> str:
    """Start the server (sharing off, no telemetry, upload size capped); returns the local URL.

    The app is built with ``Guard`` (Host check, security headers, same-origin writes, login attempts
    limited), ``ForgetFinishedCalls`` (raw API calls keep no session) and ``ApiArguments`` (a raw call missing an
    argument is told which), and Gradio keeps at most
    ``SESSION_CAPACITY`` sessions.
    """
    middleware = [Middleware(Guard, allowed_hosts=served_names(host, allowed_hosts)),
                  Middleware(ForgetFinishedCalls), Middleware(ApiArguments)]
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        auth_message="Log in with the user name and the password in QA_AUTH_PASSWORD." if auth else None,
        prevent_thread_lock=not block,
        quiet=quiet,
        show_error=False,
        max_file_size=upload_limit(demo),
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        footer_links=["api"],
        app_kwargs={"middleware": middleware},
        state_session_capacity=SESSION_CAPACITY,
        css=CSS,
        head=HEAD,
        theme=gr.themes.Soft(primary_hue="amber", font=gr.themes.Font("system-ui")),
    )
    return str(url)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Fewer glibc heaps ("arenas") for the server's threads.

    glibc gives threads that allocate at once heaps of their own, up to 8 per core; the chat's 40 worker
    threads take turns answering, each heap grows to what its thread once needed, and the free memory in them
    fragments. Measured with 30 clients after a large upload: the server's own memory grew about 20 KB per
    request with the default, 3 KB with two arenas (Gradio's bounded event log), and was 50 MB smaller.
    Elsewhere than glibc this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc
        pass


def log_to_stderr() -> None:
    """The server's log: what ``qa`` and the chat log (changes to the library among them) goes to stderr,
    one line each with the time. Gradio's and the HTTP client's own loggers are left as they are."""
    logger = logging.getLogger("qa")
    if any(h.get_name() == SERVER_LOG for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name(SERVER_LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def serve(host: str, port: int, index_dir: str | None, llm: str | None, allow_remote: bool,
          allow_uploads: bool | None = None) -> int:
    """``qa serve``: load the index, then serve the chat until interrupted. Beyond loopback the library is
    read-only unless ``allow_uploads`` (``--allow-uploads``, ``QA_ALLOW_UPLOADS``)."""
    limit_malloc_arenas()  # before any thread allocates
    check_host(host, allow_remote)
    settings = config.resolve(index_dir=index_dir, llm=llm, allow_uploads=allow_uploads)
    log_to_stderr()
    if index_dir:
        pipeline = Pipeline.load(settings.index_dir, settings=settings)
    else:
        pipeline = Pipeline.default(settings=settings)
    auth = login_check(settings)
    remote = not is_loopback(host)
    if remote and auth is None:
        also = " and add or remove documents" if settings.allow_uploads else ""
        print(
            f"warning: listening on {host} without a login; anyone who can reach this port can use the chat"
            f"{also}. Set {AUTH_PASSWORD_ENV} to require one.",
            file=sys.stderr,
        )
    demo = build_app(pipeline, llm=settings.llm, max_file_bytes=settings.max_file_bytes, remote=remote,
                     chats_db=settings.chats_db, allow_uploads=settings.allow_uploads)
    try:
        url = launch(demo, host=host, port=port, auth=auth, allowed_hosts=settings.allowed_hosts)
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port}: the port is in use or the address is not on this machine. "
            "Choose another --port or stop the program that uses it."
        ) from exc
    login = f", login required (user from {AUTH_USER_ENV}, default qa)" if auth else ""
    print(f"qa: chat over {len(pipeline.documents)} document(s) at {url}{login}. Ctrl+C stops it.", file=sys.stderr)
    if remote:
        library = ("its users may add and remove documents (each change is logged here)" if settings.allow_uploads
                   else "the documents are read-only for its users (--allow-uploads lets them add and remove)")
        print(f"qa: {library}.", file=sys.stderr)
    demo.block_thread()
    return 0
