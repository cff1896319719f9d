"""Hypothesis strategies for hostile WebSocket frames and HTTP bodies, and the checks every
answer must pass (PROTOCOL §5, §6).

Examples are generated first (`collect`) and then played against a server, so the same
inputs serve the in-process ASGI app and live daphne workers.
"""

from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ERROR_CODES = frozenset(
    {
        "bad_request",
        "unknown_type",
        "not_member",
        "stale_devices",
        "stale_roster",
        "stale_counter",
        "bad_signature",
        "bad_cert",
        "too_large",
        "rate_limited",
        "invalid_key",
        "bad_proof",
        "invalid_credentials",
        "not_authenticated",
        "forbidden",
        "registration_closed",
        "not_found",
        "duplicate_key",
        "identity_exists",
        "over_quota",
    }
)
# PROTOCOL §6 transcribed on purpose, not imported from chatclient.protocol_errors: the
# oracle must not share a mistake with the code under test. Plus over_quota, the code
# docs/protocol.md adds for blobs (§10.2's quota). unknown_type is a WebSocket code only.
STATUS_BY_CODE = {
    "bad_request": 400,
    "invalid_key": 400,
    "bad_proof": 400,
    "bad_signature": 400,
    "bad_cert": 400,
    "invalid_credentials": 400,
    "not_authenticated": 401,
    "forbidden": 403,
    "not_member": 403,
    "registration_closed": 403,
    "not_found": 404,
    "duplicate_key": 409,
    "stale_devices": 409,
    "stale_roster": 409,
    "stale_counter": 409,
    "identity_exists": 409,
    "too_large": 413,
    "over_quota": 413,
    "rate_limited": 429,
}
MAX_FRAME_BYTES = 256 * 1024

# --- JSON values of every kind --------------------------------------------------------------

huge_ints = st.sampled_from(
    [2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**30, -1, 0, 2**31, 2**53 + 1, 10**400]
)
weird_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\u202e\u0644",
        "\ufeff",
        "😀" * 3,
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "../../etc/passwd",
        "%00",
        "\\u0000",
        "A" * 5000,
        "AAAA====",
        "AAA=",
        "AA==\n",
        "YQ",
        "YR==",
        "-_-_",
        "0" * 64,
        "F" * 64,
        "00000000-0000-0000-0000-000000000000",
        "ABCDEF01-2345-6789-ABCD-EF0123456789",
        "null",
        "NaN",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    weird_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
bad_b64 = st.one_of(
    weird_text,
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n",
        max_size=60,
    ),
    st.binary(max_size=40).map(
        lambda b: __import__("base64").urlsafe_b64encode(b).decode().rstrip("=")
    ),
)


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


# --- mutations ------------------------------------------------------------------------------


@st.composite
def mutations(draw, field_names: list[str], nested: dict[str, list[str]]):
    """One change to a valid body: (op, path, value). Paths are tuples of keys."""
    op = draw(
        st.sampled_from(
            ["replace", "replace", "replace", "delete", "extra", "b64", "raw", "raw", "double"]
        )
    )
    parent = draw(st.sampled_from([(), *[(k,) for k in nested]]))
    names = nested[parent[0]] if parent else field_names
    name = draw(st.sampled_from(names))
    if op == "replace":
        return op, (*parent, name), draw(json_values)
    if op == "b64":
        return op, (*parent, name), draw(bad_b64)
    if op == "delete":
        return op, (*parent, name), None
    if op == "extra":
        return op, (*parent, draw(st.text(min_size=1, max_size=10))), draw(json_values)
    if op == "double":  # two mutations at once
        return (
            op,
            (*parent, name),
            (draw(json_values), draw(st.sampled_from(names)), draw(json_values)),
        )
    raw = draw(
        st.sampled_from(
            [
                "dup_key",
                "dup_nested_key",
                "deep_list",
                "deep_object",
                "truncate",
                "oversize",
                "lone_surrogate",
                "not_object",
                "garbage",
                "nul_in_string",
                "nan",
                "huge_exponent",
                "bom",
            ]
        )
    )
    return "raw", (raw,), draw(st.integers(min_value=0, max_value=10**6))


def apply(body: dict, mutation) -> str | bytes:
    """The text (or, for some raw mutations, bytes) of `body` after `mutation`."""
    op, path, value = mutation
    body = json.loads(json.dumps(body))
    if op == "raw":
        return raw_mutation(body, path[0], value)
    target = body
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    if op in ("replace", "b64", "extra"):
        target[path[-1]] = value
    elif op == "delete":
        target.pop(path[-1], None)
    elif op == "double":
        first, other, second = value
        target[path[-1]] = first
        target[other] = second
    return json.dumps(body, allow_nan=True)


def raw_mutation(body: dict, kind: str, n: int) -> str | bytes:
    text = json.dumps(body)
    rng = random.Random(n)
    if kind == "dup_key":
        key = rng.choice(list(body))
        return text[:-1] + f", {json.dumps(key)}: {json.dumps(body[key])}}}"
    if kind == "dup_nested_key":
        for value in body.values():
            if isinstance(value, dict) and value:
                inner = next(iter(value))
                nested = json.dumps(value)[:-1] + f", {json.dumps(inner)}: 1}}"
                return text.replace(json.dumps(value), nested, 1)
        return '{"type": "ping", "type": "send"}'
    if kind == "deep_list":
        return text[:-1] + f', "x": {deep(5000 + n % 100000, "list")}}}'
    if kind == "deep_object":
        return text[:-1] + f', "x": {deep(3000 + n % 50000, "object")}}}'
    if kind == "truncate":
        return text[: n % max(1, len(text))]
    if kind == "oversize":
        return text[:-1] + f', "pad": "{"x" * (MAX_FRAME_BYTES + n % 1000)}"}}'
    if kind == "lone_surrogate":
        key = rng.choice(list(body))
        return text.replace(json.dumps(key), json.dumps(key)[:-1] + '\\ud800"', 1)
    if kind == "not_object":
        return rng.choice(["[]", "1", '"send"', "null", "true", "[" + text + "]"])
    if kind == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(1 + n % 200))
    if kind == "nul_in_string":
        return text.replace('"', '"\\u0000', 1)
    if kind == "nan":
        key = rng.choice(list(body))
        return text.replace(json.dumps(body[key]), "NaN", 1)
    if kind == "huge_exponent":
        key = rng.choice(list(body))
        return text.replace(json.dumps(body[key]), "1e999999", 1)
    if kind == "bom":
        return "\ufeff" + text
    raise AssertionError(kind)


def marker(n: int) -> str:
    """A frame that ends the replies to the frame before it: `unknown_type` naming it."""
    return json.dumps({"type": f"zz-end-{n}"})


def is_marker(frame: dict, n: int) -> bool:
    return frame.get("type") == "error" and f"zz-end-{n}'" in frame.get("detail", "")


def collect(strategy, count: int, seed: int = 7) -> list:
    """`count` examples of `strategy` (generation only: no shrinking, no example database)."""
    found: list = []

    @settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(example):
        found.append(example)

    random_state = random.getstate()
    try:
        random.seed(seed)
        gather()
    finally:
        random.setstate(random_state)
    return found


def error_code_of_body(status: int, body: bytes) -> tuple[str | None, str]:
    """(code, problem) for an HTTP error answer: a PROTOCOL error body whose status fits."""
    try:
        data = json.loads(body)
        code = data["error"]["code"]
        detail = data["error"]["detail"]
    except (ValueError, KeyError, TypeError):
        return None, f"{status} without a PROTOCOL error body: {body[:120]!r}"
    if code not in ERROR_CODES or not isinstance(detail, str):
        return code, f"{status} with unknown code {code!r}"
    if STATUS_BY_CODE.get(code) != status:
        return code, f"{status} with code {code} (PROTOCOL says {STATUS_BY_CODE.get(code)})"
    return code, ""
