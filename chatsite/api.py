"""Wiring of the HTTP API: the apps' routers, the JSON parser and PROTOCOL error bodies."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from accounts import api as accounts_api
from accounts.errors import ActionError
from chatclient.protocol_errors import code_of, error_body, loads_strict, refuse_nul
from keys import api as keys_api
from keys import link_api
from messaging import api as messaging_api
from messaging import blob_api, history_keys


class StrictJSONParser(Parser):
    """JSON bodies with duplicated keys are refused like any malformed body."""

    def parse_body(self, request: HttpRequest):
        return refuse_nul(loads_strict(request.body))


api = NinjaAPI(
    title="e2ee chat",
    version="1",
    description="HTTP API of PROTOCOL §4. The server stores ciphertext and public keys only.",
    parser=StrictJSONParser(),
    urls_namespace="api",
    docs_url=None,  # served by `api_docs`, for staff only (the schema itself stays public)
)
api.add_router("/", accounts_api.router)
api.add_router("/", keys_api.router)
api.add_router("/", link_api.router)
api.add_router("/", messaging_api.router)
api.add_router("/", blob_api.router)
api.add_router("/", history_keys.router)


def error_response(request, code: str, detail: str, status: int, **extra):
    return api.create_response(request, error_body(code, detail, **extra), status=status)


@csrf_exempt  # it changes nothing; an unsafe method still gets the JSON 404
def api_not_found(request):
    """Any /api/ URL no endpoint matches (e.g. /api/devices/abc/): 404 `not_found`."""
    return JsonResponse(error_body("not_found", "No such API endpoint."), status=404)


def api_docs(request):
    """The interactive API docs page: for active staff, or anyone when DEBUG is on; a 404
    `not_found` otherwise (`/api/openapi.json` stays public for clients and tools)."""
    user = request.user
    if not (settings.DEBUG or (user.is_authenticated and user.is_active and user.is_staff)):
        return api_not_found(request)
    return api.docs.render_page(request, api)


@api.exception_handler(ActionError)
def on_action_error(request, exc: ActionError):
    response = error_response(request, exc.code, exc.detail, exc.status, **exc.extra)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
        fields.setdefault(where, []).append(error.get("msg", "invalid"))
    return error_response(request, "bad_request", "Invalid request.", 400, fields=fields)


@api.exception_handler(AuthenticationError)
def on_not_authenticated(request, exc):
    return error_response(request, "not_authenticated", "Log in first.", 401)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    status = exc.status_code
    return error_response(request, code_of(status), str(exc), status)
