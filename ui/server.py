"""Serving the chat: loopback by default, a login when a password is configured, and ``qa serve``."""

import hmac
import ipaddress
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

AUTH_USER_ENV = "QA_AUTH_USER"
AUTH_PASSWORD_ENV = "QA_AUTH_PASSWORD"



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


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: Callable[[str, str], bool] | None = None,
    block: bool = False,
    quiet: bool = True,
) -> str:
    """Start the server (sharing off, no telemetry, upload size capped); returns the local URL."""
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
        app_kwargs={"middleware": [Middleware(ApiArguments)]},
        css=CSS,
        head=HEAD,
        theme=gr.themes.Soft(primary_hue="amber", font=gr.themes.Font("system-ui")),
    )
    return str(url)


def serve(host: str, port: int, index_dir: str | None, llm: str | None, allow_remote: bool) -> int:
    """``qa serve``: load the index, then serve the chat until interrupted."""
    check_host(host, allow_remote)
    settings = config.resolve(index_dir=index_dir, llm=llm)
    if index_dir:
        pipeline = Pipeline.load(settings.index_dir, settings=settings)
    else:
        pipeline = Pipeline.default(settings=settings)
    auth = login_check(settings)
    if not is_loopback(host) and auth is None:
        print(
            f"warning: listening on {host} without a login; anyone who can reach this port can use the chat "
            f"and upload documents. Set {AUTH_PASSWORD_ENV} to require one.",
            file=sys.stderr,
        )
    demo = build_app(pipeline, llm=settings.llm, max_file_bytes=settings.max_file_bytes, remote=not is_loopback(host),
                     chats_db=settings.chats_db)
    try:
        url = launch(demo, host=host, port=port, auth=auth)
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port}: the port is in use or the address is not on this machine. "
            "Choose another --port or stop the program that uses it."
        ) from exc
    login = f", login required (user from {AUTH_USER_ENV}, default qa)" if auth else ""
    print(f"qa: chat over {len(pipeline.documents)} document(s) at {url}{login}. Ctrl+C stops it.", file=sys.stderr)
    demo.block_thread()
    return 0
