"""The blob endpoints (PROTOCOL §4, §10.2): upload an encrypted attachment, download one."""

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Router, Status

from accounts.auth import session_auth
from accounts.errors import ActionError
from accounts.ratelimits import enforce
from accounts.schemas import ErrorOut, with_errors
from accounts.wire import iso_utc

from . import blobs
from .actions import blobs as blob_actions
from .schemas import BlobWrapped

router = Router(tags=["blobs"], auth=session_auth)

DOWNLOAD_HEADERS = {
    "Content-Type": "application/octet-stream",
    "Content-Disposition": "attachment",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=31536000, immutable",
    "Accept-Ranges": "bytes",
}


def _declared_length(request) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or ""
    if not value:
        return None
    if not value.isdigit():
        raise ActionError("bad_request", "Content-Length is not a number.")
    return int(value)


@router.post(
    "/blobs/",
    response=with_errors({201: BlobWrapped}),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def upload(request):
    """An encrypted attachment as the raw body (`application/octet-stream`), streamed to
    storage: 201 `{"blob": {"id","size","created"}}`. 413 `too_large` past MAX_BLOB_BYTES,
    400 `bad_request` for a length no blob has (§10.2), 413 `over_quota` past the user's
    BLOB_QUOTA_BYTES, 429 `rate_limited` past BLOB_UPLOAD_RATE. Nothing is kept on refusal."""
    declared = _declared_length(request)
    enforce(
        request,
        "blobs.upload",
        key="user",
        setting="BLOB_UPLOAD_RATE",
        detail="Too many uploads; try again later.",
    )
    blob = blob_actions.upload(request.auth, request, declared)
    return Status(
        201, {"blob": {"id": blob.id, "size": blob.size, "created": iso_utc(blob.created)}}
    )


@router.get("/blobs/{blob_id}/", response=with_errors({200: None, 206: None, 416: ErrorOut}))
def download(request, blob_id: str):
    """The blob's bytes to those who may read it (see `blobs.require_readable`), else 404
    `not_found`. One `Range` gives 206 (416 when unsatisfiable). With BLOB_ACCEL_REDIRECT
    nginx sends the bytes after this answer (`X-Accel-Redirect`)."""
    blob = blobs.require_readable(request.auth, blob_id)
    accel = blobs.accel_path(blob.id)
    if accel is not None:  # nginx serves the file, ranges included
        response = HttpResponse(status=200)
        for header, value in DOWNLOAD_HEADERS.items():
            response[header] = value
        response["X-Accel-Redirect"] = accel
        return response
    size = blob.size
    try:
        wanted = blobs.parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        response = JsonResponse(
            {"error": {"code": "bad_request", "detail": "The range is past the blob's end."}},
            status=416,
        )
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = wanted if wanted is not None else (0, size - 1)
    length = last - first + 1
    response = StreamingHttpResponse(
        blobs.stream(blob.id, first, length), status=206 if wanted is not None else 200
    )
    for header, value in DOWNLOAD_HEADERS.items():
        response[header] = value
    response["Content-Length"] = str(length)
    if wanted is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response
