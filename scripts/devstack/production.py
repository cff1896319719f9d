"""The production shape on loopback: nginx with the shipped site (TLS) in front of daphne
workers started as the systemd unit starts them, Redis and PostgreSQL given by the
caller, static files collected and served by nginx. Tests (tests/test_production.py)
and benchmarks (scenario 3) run it."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .base import START_TIMEOUT, free_port, remove_dir
from .daphne import UnitDaphne
from .nginx import Nginx
from .nginx_conf import loopback_site
from .stack import DjangoStack
from .tls import self_signed_cert, staging_cert


class TlsProxy:
    """nginx with deploy/nginx/chat.conf (see `nginx_conf.loopback_site`) in front of
    `upstream_ports`, on an HTTP and an HTTPS port of 127.0.0.1, with a certificate for
    127.0.0.1: deploy/selfsigned-cert's (`cert="staging"`, as docs/deploy.md's staging
    step makes it) or one made in Python (`cert="python"`). Its config, logs and
    certificate live in `folder` (a temp dir when not given, removed by `stop`)."""

    def __init__(
        self,
        upstream_ports: list[int],
        static_root: Path | str,
        *,
        folder: Path | None = None,
        blob_dir: Path | None = None,
        http_port: int | None = None,
        https_port: int | None = None,
        cert: str = "staging",
        worker_connections: int = 512,
    ) -> None:
        self.own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="e2ee-nginx-"))
        os.chmod(self.folder, 0o755)  # nginx's workers read the certificate and write logs
        self.http_port = http_port or free_port()
        self.https_port = https_port or free_port()
        make = staging_cert if cert == "staging" else self_signed_cert
        self.cert, self.key = make(self.folder)
        site = loopback_site(
            http_port=self.http_port,
            https_port=self.https_port,
            upstream_ports=upstream_ports,
            cert=self.cert,
            key=self.key,
            static_root=static_root,
            folder=self.folder,
            blob_dir=blob_dir,
        )
        self.nginx = Nginx(self.folder, site, self.https_port, worker_connections)

    @property
    def origin(self) -> str:
        """https://127.0.0.1:PORT, what a browser's Origin is."""
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_origin(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    @property
    def access_log(self) -> Path:
        return self.folder / "chat.access.log"

    @property
    def pid(self) -> int | None:
        return self.nginx.pid

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this proxy's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def start(self, timeout: float = START_TIMEOUT) -> TlsProxy:
        self.nginx.start(timeout)
        return self

    def stop(self) -> None:
        self.nginx.stop()
        if self.own_folder:
            remove_dir(self.folder)


#: The settings of a worker behind the TLS proxy (the `chat.env` of docs/deploy.md).
BEHIND_PROXY_ENV = {
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "DJANGO_MANIFEST_STATIC": "1",
    "LOG_FORMAT": "json",
}


class ProductionStack:
    """`workers` chat workers (the systemd unit's command line) on `database_url` and
    `redis_url`, static files collected, behind a `TlsProxy`. `env` adds to (or
    overrides) `BEHIND_PROXY_ENV`; DJANGO_CSRF_TRUSTED_ORIGINS is the proxy's origin.
    `.stack` is the DjangoStack (its `servers` are the workers), `.proxy` the TlsProxy."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        *,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        folder: Path | None = None,
        migrated: bool = False,
        cert: str = "staging",
    ) -> None:
        self.folder = folder
        self.cert = cert
        self.http_port, self.https_port = free_port(), free_port()
        origin = f"https://127.0.0.1:{self.https_port}"
        self.stack = DjangoStack(
            workers,
            database_url=database_url,
            redis_url=redis_url,
            env={**BEHIND_PROXY_ENV, "DJANGO_CSRF_TRUSTED_ORIGINS": origin, **(env or {})},
            collectstatic=True,
            migrated=migrated,
            worker_class=UnitDaphne,
        )
        self.proxy: TlsProxy | None = None

    def start(self, timeout: float = START_TIMEOUT) -> ProductionStack:
        """Migrate, collect static files, start the workers, then nginx; all stopped again
        if any of it fails."""
        try:
            self.stack.start(timeout)
            os.chmod(self.stack.dir, 0o755)  # nginx reads static files and blobs from it
            var = Path(self.stack.env["CHAT_VAR_DIR"])
            self.proxy = TlsProxy(
                [server.port for server in self.stack.servers],
                self.stack.env["DJANGO_STATIC_ROOT"],
                folder=self.folder,
                blob_dir=var / "blobs",
                http_port=self.http_port,
                https_port=self.https_port,
                cert=self.cert,
            ).start(timeout)
            return self
        except BaseException:
            self.stop()
            raise

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def servers(self):
        return self.stack.servers

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        self.stack.stop()

    def __enter__(self) -> ProductionStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
