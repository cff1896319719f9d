"""The published OpenAPI description matches PROTOCOL §4, endpoint for endpoint."""

import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db

# (method, path) -> (success statuses, request body schema or None) from PROTOCOL §4 and §6.
PROTOCOL_ENDPOINTS = {
    ("get", "/api/session/"): ({"200"}, None),
    ("post", "/api/session/"): ({"200"}, {"username", "password"}),
    ("delete", "/api/session/"): ({"204"}, None),
    ("post", "/api/users/"): ({"201"}, {"username", "password"}),
    ("get", "/api/users/"): ({"200"}, None),
    ("get", "/api/users/{username}/identity/"): ({"200"}, None),
    ("put", "/api/identity/"): ({"200", "201"}, {"id_spki", "proof", "upgrade", "replace"}),
    ("post", "/api/devices/"): ({"201"}, {"name", "enc_spki", "sig_spki", "proof", "cert"}),
    ("get", "/api/devices/"): ({"200"}, None),
    ("delete", "/api/devices/{device_id}/"): ({"204"}, None),
    ("post", "/api/devices/{device_id}/cert/"): ({"200"}, {"cert"}),
    ("post", "/api/link-requests/"): ({"201"}, {"name", "enc_spki", "sig_spki", "proof"}),
    ("get", "/api/link-requests/"): ({"200"}, None),
    ("get", "/api/link-requests/{request_id}/"): ({"200"}, None),
    ("post", "/api/link-requests/{request_id}/approve/"): ({"201"}, {"cert", "id_wrap"}),
    ("delete", "/api/link-requests/{request_id}/"): ({"204"}, None),
    ("post", "/api/devices/{device_id}/history-keys/"): ({"200"}, {"wraps"}),
    ("get", "/api/users/{username}/devices/"): ({"200"}, None),
    ("get", "/api/keys/{kid}/"): ({"200"}, None),
    ("get", "/api/conversations/"): ({"200"}, None),
    ("post", "/api/conversations/"): ({"200", "201"}, {"members", "gid", "title", "roster"}),
    ("get", "/api/conversations/{conversation_id}/roster/"): ({"200"}, None),
    ("post", "/api/conversations/{conversation_id}/roster/"): ({"200", "201"}, {"gid", "record"}),
    ("get", "/api/conversations/{conversation_id}/messages/"): ({"200"}, None),
    ("post", "/api/conversations/{conversation_id}/messages/"): (
        {"200", "201"},
        {"client_msg_id", "envelope", "blobs"},
    ),
    ("delete", "/api/conversations/{conversation_id}/messages/{message_id}/"): ({"204"}, None),
    ("post", "/api/conversations/{conversation_id}/accept/"): ({"200"}, None),
    ("post", "/api/conversations/{conversation_id}/decline/"): ({"204"}, None),  # our extension
    ("post", "/api/users/{username}/block/"): ({"204"}, None),
    ("delete", "/api/users/{username}/block/"): ({"204"}, None),
    ("post", "/api/blobs/"): ({"201"}, None),
    ("get", "/api/blobs/{blob_id}/"): ({"200", "206", "416"}, None),
}
ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "429"}


def resolve(schema, ref):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_openapi_lists_exactly_the_protocol_endpoints(client):
    schema = client.get("/api/openapi.json").json()
    published = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert published == set(PROTOCOL_ENDPOINTS)
    for (method, path), (success, body) in PROTOCOL_ENDPOINTS.items():
        operation = schema["paths"][path][method]
        assert set(operation["responses"]) == success | ERROR_STATUSES, (method, path)
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if path == "/api/blobs/" and method == "post":  # the raw encrypted bytes (§10.2)
            raw = operation["requestBody"]["content"]["application/octet-stream"]["schema"]
            assert raw == {"type": "string", "format": "binary"}
        if body is None:
            assert content is None
        else:
            assert set(resolve(schema, content["schema"]["$ref"])["properties"]) == body


def test_openapi_is_public_and_the_docs_page_is_for_staff(client, settings):
    assert client.get("/api/openapi.json").json()["info"]["title"] == "e2ee chat"
    hidden = client.get("/api/docs")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    user = User.objects.create_user("alice", password="x" * 12)
    client.force_login(user)
    assert client.get("/api/docs").status_code == 404
    User.objects.filter(pk=user.pk).update(is_staff=True)
    assert client.get("/api/docs").status_code == 200
    client.logout()
    settings.DEBUG = True
    assert client.get("/api/docs").status_code == 200


def test_security_headers_on_pages_api_and_static(client):
    for path in ("/login/", "/api/session/", "/api/nowhere/", "/static/chat/chat.js"):
        response = client.get(path)
        policy = response.headers.get("Permissions-Policy", "")
        assert "camera=()" in policy and "microphone=()" in policy, path
        assert "geolocation=()" in policy, path
        assert response.headers.get("Cross-Origin-Resource-Policy") == "same-origin", path


def test_message_and_error_shapes(client):
    components = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert set(components["MessageOut"]["properties"]) == {
        "id",
        "conversation",
        "seq",
        "sender_id",
        "sender",
        "sender_device",
        "client_msg_id",
        "created",
        "envelope",
        "blobs",
        "deleted",
    }
    assert set(components["Envelope"]["properties"]) == {
        "v",
        "n",
        "head",
        "iv",
        "ct",
        "kc",
        "keys",
        "sig_kid",
        "sig",
    }
    assert components["Envelope"].get("additionalProperties") is False
    assert components["Envelope"]["properties"]["v"].get("const") == 2
    assert components["Envelope"]["properties"]["n"]["maximum"] == 2**53 - 1
    assert set(components["ConversationOut"]["properties"]) >= {"gid", "roster_head"}
    assert set(components["RosterRecordIn"]["properties"]) == {
        "n",
        "prev",
        "op",
        "subjects",
        "by",
        "title",
        "sig_kid",
        "sig",
        "hash",
    }
    assert components["RosterRecordIn"].get("additionalProperties") is False
    assert set(components["RosterRecordOut"]["properties"]) == {
        "n",
        "prev",
        "op",
        "subjects",
        "by",
        "title",
        "sig_kid",
        "sig",
        "hash",
        "created",
    }
    assert set(components["ErrorOut"]["properties"]) == {"error"}


def test_identity_and_link_request_shapes(client):
    components = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert set(components["IdentityOut"]["properties"]) == {
        "id_spki",
        "id_kid",
        "proof",
        "upgrade",
        "created",
    }
    assert set(components["PreviousIdentityOut"]["properties"]) == {
        *components["IdentityOut"]["properties"],
        "replaced",
    }
    assert "cert" in components["OwnDeviceOut"]["properties"]
    request = {
        "id",
        "name",
        "enc_spki",
        "sig_spki",
        "enc_kid",
        "sig_kid",
        "proof",
        "status",
        "created",
        "expires",
    }
    assert set(components["LinkRequestOut"]["properties"]) == request
    assert set(components["LinkRequestFull"]["properties"]) == request | {"device", "id_wrap"}
    assert set(components["WrapIn"]["properties"]) == {"message", "ek"}
    assert components["HistoryKeysIn"]["properties"]["wraps"]["maxItems"] == 500
