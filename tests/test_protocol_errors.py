"""The shared §6 catalogue (chatclient.protocol_errors) against PROTOCOL.md, and both
sides reading and writing one error body through it."""

import re
from pathlib import Path

import pytest

from accounts.errors import ActionError
from chatclient import protocol_errors as pe
from chatclient.errors import RateLimited
from chatclient.session import _api_error

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md"


def test_every_code_protocol_names_has_its_status():
    text = PROTOCOL.read_text()
    line = text[text.index("**Error codes and HTTP status**") : text.index("**Response bodies**")]
    named = dict(re.findall(r"`([a-z_]+)` (\d{3})", line))
    assert named and all(pe.STATUS_BY_CODE[code] == int(s) for code, s in named.items())


def test_the_server_writes_the_body_the_client_reads():
    error = ActionError("rate_limited", retry_after=3, scope="sends")
    body = pe.error_body(error.code, error.detail, **error.extra)
    assert error.status == 429 and body["error"]["detail"] == "rate limited"
    read = _api_error(error.status, body, b"")
    assert isinstance(read, RateLimited) and (read.code, read.extra) == (
        "rate_limited",
        {"scope": "sends"},
    )
    assert _api_error(502, None, b"Bad Gateway").code == "server_error"
    assert _api_error(413, None, b"").code == "too_large"


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}'])
def test_strict_json_refuses_duplicated_keys(text):
    with pytest.raises(ValueError, match="duplicate key"):
        pe.loads_strict(text)


def test_nul_characters_are_refused_in_keys_and_values():
    assert pe.refuse_nul({"a": ["b"]}) == {"a": ["b"]}
    for value in ({"a\x00": 1}, {"a": ["x\x00"]}):
        with pytest.raises(ValueError):
            pe.refuse_nul(value)
