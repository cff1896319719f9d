"""nginx as a child process (daemon off), with a main config of its own around a site
config (see ``site`` for the shipped deploy/nginx/chat.conf made fit for loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .base import Service, ServiceError

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    """Whether the nginx binary is here (scripts/install-system-deps.sh installs it)."""
    return os.access(NGINX, os.X_OK)


class Nginx(Service):
    """nginx with its prefix, pid file, logs and temp paths in `folder`; the site config
    `site` (text) is included in its `http` block. `port` is the one port it is waited on
    (the TLS one). `worker_connections` counts both sides of a proxied socket."""

    name = "nginx"

    def __init__(self, folder: Path, site: str, port: int, worker_connections: int = 512):
        self.folder = Path(folder)
        (self.folder / "site.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        paths = "".join(
            f"    {kind}_temp_path {folder}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log info;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            "http {\n    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {folder}/access.log;\n{paths}"
            f"    include {folder}/site.conf;\n}}\n"
        )
        super().__init__(self.folder / "nginx.out", port=port)

    @property
    def error_log(self) -> Path:
        return self.folder / "error.log"

    def _base_argv(self) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-e", str(self.error_log)] + [
            "-c",
            str(self.folder / "nginx.conf"),
        ]

    def argv(self) -> list[str]:
        return [*self._base_argv(), "-g", "daemon off;"]

    def check_config(self) -> None:
        """`nginx -t` on the config; ServiceError with nginx's words if it is refused."""
        test = subprocess.run(
            [*self._base_argv(), "-t"], capture_output=True, text=True, timeout=30
        )
        if test.returncode != 0:
            raise ServiceError(f"nginx -t refused the config\n{test.stderr}")

    def start(self, timeout: float = 30.0) -> Nginx:
        """Check the config, then start and wait until the port accepts."""
        self.check_config()
        return super().start(timeout)
