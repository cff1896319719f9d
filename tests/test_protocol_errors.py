"""The shared §6 catalogue (chatclient.protocol_errors) and the fuzzers' own table against
PROTOCOL.md, and both sides reading and writing one error body through the catalogue."""

import re
from pathlib import Path

import pytest

from accounts.errors import ActionError
from chatclient import protocol_errors as pe
from chatclient.errors import RateLimited
from chatclient.session import _api_error
from tests.adversarial import fuzzing

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md"


def section_6_statuses() -> dict[str, int]:
    text = PROTOCOL.read_text()
    line = text[text.index("**Error codes and HTTP status**") : text.index("**Response bodies**")]
    return {code: int(s) for code, s in re.findall(r"`([a-z_]+)` (\d{3})", line)}


def test_every_code_protocol_names_has_its_status():
    named = section_6_statuses()
    assert named and all(pe.STATUS_BY_CODE[code] == s for code, s in named.items())


def test_the_fuzzers_own_table_knows_every_code_the_server_may_send():
    """The fuzzers' oracle (tests/adversarial/fuzzing.py) is transcribed from the contract,
    not imported; it must still hold every §6 code with its status, and every code of the
    shared catalogue, or an answer the contract allows reads as a violation."""
    named = section_6_statuses()
    assert named.items() <= fuzzing.STATUS_BY_CODE.items()
    assert set(pe.STATUS_BY_CODE) <= fuzzing.ERROR_CODES
    http_codes = set(pe.STATUS_BY_CODE) - {"unknown_type"}  # a WebSocket code (§5)
    assert {c: pe.STATUS_BY_CODE[c] for c in http_codes} == fuzzing.STATUS_BY_CODE


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
