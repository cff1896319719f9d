"""scripts/devstack/nginx_conf.py: the shipped nginx site read as directives and blocks,
and made fit for loopback by name (nginx itself runs it in tests/test_production.py)."""

from pathlib import Path

import pytest

from scripts.devstack import SHIPPED_SITE, loopback_site
from scripts.devstack.nginx_conf import parse, render, tls_server


def site(tmp_path: Path, shipped: Path = SHIPPED_SITE) -> str:
    return loopback_site(
        http_port=8080,
        https_port=8443,
        upstream_ports=[9001, 9002, 9003],
        cert=tmp_path / "c.pem",
        key=tmp_path / "k.pem",
        static_root=tmp_path / "static",
        folder=tmp_path,
        shipped=shipped,
    )


def test_the_shipped_site_on_loopback_keeps_everything_else(tmp_path):
    shipped, ours = parse(SHIPPED_SITE.read_text()), parse(site(tmp_path))
    upstream = ours.find("upstream", "chat_daphne")
    assert [d.args for d in upstream.find_all("server")] == [
        [f"127.0.0.1:{port}", "max_fails=0"] for port in (9001, 9002, 9003)
    ]
    tls = tls_server(ours)
    assert [d.args for d in tls.find_all("listen")] == [["127.0.0.1:8443", "ssl"]]
    assert tls.find("location", "/static/").find("alias").args == [f"{tmp_path}/static/"]
    assert tls.find("ssl_certificate").args == [str(tmp_path / "c.pem")]
    # What the test stack does not replace is the shipped config, directive for directive.
    same = tls.find("location", "/")
    assert same.render() == tls_server(shipped).find("location", "/").render()
    assert render(parse(render(ours))) == render(ours)


def test_a_directive_gone_from_the_shipped_site_is_named(tmp_path):
    text = SHIPPED_SITE.read_text().replace("alias /srv/chat/staticfiles/;", "")
    changed = tmp_path / "chat.conf"
    changed.write_text(text)
    with pytest.raises(KeyError, match="alias"):
        site(tmp_path, shipped=changed)
