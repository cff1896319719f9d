"""The shipped nginx site (deploy/nginx/chat.conf) read as nginx reads it, so that a dev
stack changes named directives in named blocks (a ``listen``, the ``alias`` of
``location /static/``, the ``server`` lines of ``upstream chat_daphne``) instead of
editing text: comments and layout of the shipped file do not matter, and a directive or
block that is no longer there raises ``KeyError`` with its name.

``loopback_site`` is what tests and benchmarks run: the shipped site on 127.0.0.1 ports,
with a test certificate and temp paths, everything else (TLS settings, proxy headers,
timeouts, caching, X-Accel-Redirect, the JSON access log) as shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .base import REPO_ROOT

SHIPPED_SITE = REPO_ROOT / "deploy" / "nginx" / "chat.conf"
_TOKEN = re.compile(r"""\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{};]|[^\s{};"'#]+""")


@dataclass
class Directive:
    """`name args...;`, or `name args... { children }` when `children` is not None."""

    name: str
    args: list[str] = field(default_factory=list)
    children: list[Directive] | None = None

    def find_all(self, name: str, *args: str) -> list[Directive]:
        """The children called `name` whose arguments start with `args`."""
        return [
            d for d in self.children or [] if d.name == name and d.args[: len(args)] == list(args)
        ]

    def find(self, name: str, *args: str) -> Directive:
        """The one child `name args...`; KeyError if there is none or more than one."""
        found = self.find_all(name, *args)
        if len(found) != 1:
            raise KeyError(f"{len(found)} × `{' '.join([name, *args])}` in `{self.label}`")
        return found[0]

    def set(self, name: str, *args: str) -> None:
        """Give the one existing child `name` these arguments (KeyError if it is missing)."""
        self.find(name).args = list(args)

    def remove(self, directive: Directive) -> None:
        self.children.remove(directive)

    @property
    def label(self) -> str:
        return " ".join([self.name, *self.args]) or "(top)"

    def render(self, indent: int = 0) -> str:
        pad = "    " * indent
        head = " ".join([self.name, *self.args])
        if self.children is None:
            return f"{pad}{head};\n"
        inner = "".join(child.render(indent + 1) for child in self.children)
        return f"{pad}{head} {{\n{inner}{pad}}}\n"


def parse(text: str) -> Directive:
    """The config as a tree under a nameless top block (comments dropped)."""
    top = Directive("", children=[])
    stack, words = [top], []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.isspace() or token.startswith("#"):
            continue
        if token == ";":
            stack[-1].children.append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            block = Directive(words[0], words[1:], children=[])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise ValueError(f"unbalanced `}}` after {words}")
            stack.pop()
        else:
            words.append(token)
    if words or len(stack) != 1:
        raise ValueError("the config ends inside a directive or block")
    return top


def render(top: Directive) -> str:
    return "".join(child.render() for child in top.children)


def tls_server(top: Directive) -> Directive:
    """The `server` block that listens with `ssl`."""
    (server,) = [
        s for s in top.find_all("server") if any("ssl" in d.args for d in s.find_all("listen"))
    ]
    return server


def redirect_server(top: Directive) -> Directive:
    """The plain-HTTP `server` block (the redirect to HTTPS and ACME challenges)."""
    (server,) = [s for s in top.find_all("server") if s is not tls_server(top)]
    return server


def loopback_site(
    *,
    http_port: int,
    https_port: int,
    upstream_ports: list[int],
    cert: Path,
    key: Path,
    static_root: Path | str,
    folder: Path,
    blob_dir: Path | None = None,
    shipped: Path = SHIPPED_SITE,
) -> str:
    """The shipped site on 127.0.0.1: its two server blocks on `http_port` / `https_port`
    (IPv4 loopback only), `cert`/`key`, static files from `static_root`, blobs from
    `blob_dir`, logs and the ACME root in `folder`, and one `upstream` server line per
    port of `upstream_ports` with the shipped line's parameters (`max_fails=0`)."""
    top = parse(shipped.read_text())
    upstream = top.find("upstream", "chat_daphne")
    shipped_servers = upstream.find_all("server")
    params = shipped_servers[0].args[1:]
    at = upstream.children.index(shipped_servers[0])
    for line in shipped_servers:
        upstream.remove(line)
    for offset, port in enumerate(upstream_ports):
        upstream.children.insert(at + offset, Directive("server", [f"127.0.0.1:{port}", *params]))

    plain, tls = redirect_server(top), tls_server(top)
    for server, port, extra in ((plain, http_port, []), (tls, https_port, ["ssl"])):
        for listen in server.find_all("listen"):
            server.remove(listen)
        server.children.insert(0, Directive("listen", [f"127.0.0.1:{port}", *extra]))
        access_log = server.find("access_log")
        access_log.args = [str(folder / "chat.access.log"), *access_log.args[1:]]
    plain.find("location", "/.well-known/acme-challenge/").set("root", str(folder))
    plain.find("set", "$chat_https_host").args = ["$chat_https_host", f'"$host:{https_port}"']
    tls.set("ssl_certificate", str(cert))
    tls.set("ssl_certificate_key", str(key))
    tls.find("location", "/static/").set("alias", f"{static_root}/")
    tls.find("location", "/_blobs/").set("alias", f"{blob_dir or folder / 'blobs'}/")
    return render(top)
