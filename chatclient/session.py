"""HTTP side of PROTOCOL §4: a cookie session with CSRF, one method per endpoint.

Requests go through one ``httpx.AsyncClient`` per event loop (connections are kept
alive between requests), so every method is a coroutine. Success returns the parsed JSON
(``None`` for 204); an error body raises ``ChatApiError``; a server that cannot be reached
raises ``ServerUnreachable``. Blobs stream both ways: the upload's pieces are produced in
a worker thread (encryption), the download's pieces are handed to a sink in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import logging
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx

from .errors import ChatApiError, ServerUnreachable, api_error
from .protocol_errors import code_of, read_error_body

logger = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_COOKIE_FIELDS = ("name", "value", "domain", "path", "secure", "expires")
DOWNLOAD_READ = 256 * 1024  # bytes per read of a blob download


def normalize_base_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; anything else is ValueError."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server URL must be http:// or https://, got {url!r}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _quote(segment: str | int) -> str:
    return urllib.parse.quote(str(segment), safe="")


class ChatSession:
    """A logged-in (or not yet) HTTP session with one server.

    Holds the cookie jar (``sessionid``, ``csrftoken``); fetches the CSRF cookie with
    ``GET /api/session/`` before the first unsafe request and sends it as
    ``X-CSRFToken`` along with an ``Origin`` of the server's own origin.
    """

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, verify: ssl.SSLContext | bool = True
    ) -> None:
        """``verify``: check the server's TLS certificate (default), against this
        ``ssl.SSLContext`` (e.g. a self-signed certificate's), or not at all (False)."""
        self.base_url = normalize_base_url(base_url)
        self.verify = verify
        parts = urllib.parse.urlsplit(self.base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._credentials: tuple[str, str] | None = None
        self.relogins = 0  # how many times the session was renewed by ``relogin``

    # --- automatic re-login ------------------------------------------------------------

    def keep_logged_in(self, username: str, password: str) -> None:
        """Hold the password in memory so that an expired session (``not_authenticated``,
        a 4401 close) is renewed by logging in again (``relogin``), once per refusal."""
        self._credentials = (username, password)

    @property
    def can_relogin(self) -> bool:
        return self._credentials is not None

    async def relogin(self) -> bool:
        """Log in again with the held password; False if none is held. A refused password
        (changed, account deactivated) raises its ``ChatApiError``."""
        if self._credentials is None:
            return False
        username, password = self._credentials
        for cookie in list(self.jar):  # the dead session and its CSRF token
            self.jar.clear(cookie.domain, cookie.path, cookie.name)
        await self.login(username, password)
        self.relogins += 1
        return True

    # --- cookies and persistence ---------------------------------------------------------

    def cookie(self, name: str) -> str | None:
        """The value of a cookie the server set, or None."""
        for cookie in self.jar:
            if cookie.name == name:
                return cookie.value
        return None

    @property
    def csrf_token(self) -> str | None:
        return self.cookie("csrftoken")

    def cookie_header(self, path: str = "/ws/chat/") -> str:
        """The ``Cookie`` header a request to ``path`` would carry (for the WebSocket)."""
        request = urllib.request.Request(self.base_url + path)
        self.jar.add_cookie_header(request)
        return request.unredirected_hdrs.get("Cookie", "")

    def export_state(self) -> dict:
        """JSON-able state (server URL and cookies) for ``from_state``; it holds the session
        secret, so store it like a password (0600)."""
        cookies = [{field: getattr(c, field) for field in _COOKIE_FIELDS} for c in self.jar]
        for entry, cookie in zip(cookies, self.jar, strict=True):
            entry["domain_specified"] = cookie.domain_specified
            entry["domain_initial_dot"] = cookie.domain_initial_dot
        return {"server": self.base_url, "cookies": cookies}

    @classmethod
    def from_state(cls, state: dict, *, timeout: float = 30.0) -> ChatSession:
        """A session restored from ``export_state``; expired cookies are dropped."""
        session = cls(state["server"], timeout=timeout)
        for entry in state.get("cookies", []):
            cookie = http.cookiejar.Cookie(
                version=0,
                name=entry["name"],
                value=entry["value"],
                port=None,
                port_specified=False,
                domain=entry["domain"],
                domain_specified=entry.get("domain_specified", False),
                domain_initial_dot=entry.get("domain_initial_dot", False),
                path=entry.get("path") or "/",
                path_specified=True,
                secure=bool(entry.get("secure")),
                expires=entry.get("expires"),
                discard=False,
                comment=None,
                comment_url=None,
                rest={},
            )
            session.jar.set_cookie(cookie)
        session.jar.clear_expired_cookies()
        return session

    # --- transport ---------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop (made on first use; a session used
        from another loop, e.g. a second ``asyncio.run``, gets a new one). It shares
        ``jar``, so cookies the server sets are this session's."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop or self._http.is_closed:
            self._http = httpx.AsyncClient(
                cookies=self.jar,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=True,
                verify=self.verify,
            )
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        """Close the kept-alive connections (the session can still be used: a new client
        is made on the next request)."""
        client, self._http, self._http_loop = self._http, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(RuntimeError):  # made on a loop that is gone
                await client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | AsyncIterator[bytes] | None,
        headers: dict,
        sink: Callable[[bytes], None] | None = None,
    ) -> tuple[int, bytes]:
        """One HTTP exchange: (status, body). With ``sink``, a successful answer's body goes
        to it piece by piece (in a worker thread) instead, and b"" is returned; error
        bodies are always read."""
        try:
            async with self._client().stream(
                method, url, content=content, headers=headers
            ) as response:
                if sink is None or response.status_code >= 400:
                    return response.status_code, await response.aread()
                async for piece in response.aiter_bytes(DOWNLOAD_READ):
                    await asyncio.to_thread(sink, piece)
                return response.status_code, b""
        except httpx.TransportError as error:
            raise ServerUnreachable(self.base_url, str(error) or type(error).__name__) from error

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one API request; returns parsed JSON (None for an empty body).

        ``path`` starts with ``/api/``. Unsafe methods get the CSRF cookie first if
        missing; ``headers`` are added (e.g. ``X-Device-Id``). Raises ``ChatApiError``
        for 4xx/5xx, ``ServerUnreachable`` otherwise.
        """
        method = method.upper()
        extra = headers
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        for attempt in range(2):
            headers = await self._headers(method, extra)
            if data is not None:
                headers["Content-Type"] = "application/json"
            status, raw = await self._send(method, url, data, headers)
            if attempt == 0 and status == 401 and path != "/api/session/" and self.can_relogin:
                logger.info("session expired (%s %s); logging in again", method, path)
                await self.relogin()
                continue
            break
        return _answer(status, raw)

    async def _headers(self, method: str, extra: dict[str, str] | None) -> dict[str, str]:
        """``Accept`` plus ``extra``; for unsafe methods the CSRF token (fetched first if
        missing), ``Origin`` and ``Referer``."""
        if method in UNSAFE_METHODS and self.csrf_token is None:
            await self.request("GET", "/api/session/")
        headers = {"Accept": "application/json", **(extra or {})}
        if method in UNSAFE_METHODS:
            headers.update(
                {
                    "X-CSRFToken": self.csrf_token or "",
                    "Origin": self.origin,
                    "Referer": self.base_url + "/",
                }
            )
        return headers

    # --- blobs (§10.2) -------------------------------------------------------------------

    async def upload_blob(self, body: Iterable[bytes], length: int) -> dict:
        """``POST /api/blobs/``: stream ``body`` (an iterable of byte strings, each piece
        produced in a worker thread, ``length`` bytes in all: sent as Content-Length, not
        chunked) as the raw ``application/octet-stream`` body; returns
        ``{"id","size","created"}``."""
        headers = await self._headers("POST", {"Content-Type": "application/octet-stream"})
        headers["Content-Length"] = str(length)
        url = self.base_url + "/api/blobs/"
        status, raw = await self._send("POST", url, _pieces(iter(body)), headers)
        return _answer(status, raw)["blob"]

    async def download_blob(self, blob_id: str, sink: Callable[[bytes], None]) -> None:
        """``GET /api/blobs/<id>/``: hand the bytes to ``sink`` as they arrive (in a worker
        thread, pieces of at most 256 KiB). What ``sink`` raises ends the download and
        propagates; an error answer raises ``ChatApiError``."""
        url = f"{self.base_url}/api/blobs/{_quote(blob_id)}/"
        headers = {"Accept": "application/octet-stream"}
        status, raw = await self._send("GET", url, None, headers, sink)
        if status >= 400:
            _answer(status, raw)

    # --- session and users (§4) --------------------------------------------------------

    async def get_session(self) -> dict | None:
        """``GET /api/session/``: the logged-in user ``{"id","username","is_staff"}`` or None."""
        return (await self.request("GET", "/api/session/"))["user"]

    async def login(self, username: str, password: str) -> dict:
        """``POST /api/session/``; returns the user."""
        body = {"username": username, "password": password}
        return (await self.request("POST", "/api/session/", body))["user"]

    async def logout(self) -> None:
        """``DELETE /api/session/``."""
        await self.request("DELETE", "/api/session/")

    async def register(self, username: str, password: str) -> dict:
        """``POST /api/users/``: register and log in; returns the user."""
        body = {"username": username, "password": password}
        return (await self.request("POST", "/api/users/", body))["user"]

    async def search_users(self, prefix: str) -> list[dict]:
        """``GET /api/users/?q=``: active users whose name starts with ``prefix`` (at
        least 3 characters; a server with ``USER_DISCOVERY=exact`` wants the whole name)."""
        return (await self.request("GET", "/api/users/", query={"q": prefix}))["users"]

    # --- identity, devices and keys (§4, §7) ----------------------------------------------

    async def user_identity(self, username: str) -> dict:
        """``GET /api/users/<username>/identity/``: ``{"user", "identity", "previous"}``."""
        return await self.request("GET", f"/api/users/{_quote(username)}/identity/")

    async def put_identity(
        self, id_spki: str, proof: str, *, upgrade: dict | None = None, replace: bool = False
    ) -> dict:
        """``PUT /api/identity/``: set (or with ``replace`` reset) my identity key."""
        body: dict[str, Any] = {"id_spki": id_spki, "proof": proof}
        if upgrade is not None:
            body["upgrade"] = upgrade
        if replace:
            body["replace"] = True
        return (await self.request("PUT", "/api/identity/", body))["identity"]

    async def register_device(
        self, name: str, enc_spki: str, sig_spki: str, proof: str, cert: str
    ) -> dict:
        """``POST /api/devices/`` (base64 SPKIs, proof and cert); returns the new device."""
        body = {"name": name, "enc_spki": enc_spki, "sig_spki": sig_spki, "proof": proof}
        return await self.request("POST", "/api/devices/", {**body, "cert": cert})

    async def certify_device(self, device_id: int, cert: str) -> dict:
        """``POST /api/devices/<id>/cert/`` for one of my uncertified (v1) devices."""
        path = f"/api/devices/{int(device_id)}/cert/"
        return (await self.request("POST", path, {"cert": cert}))["device"]

    async def my_devices(self) -> list[dict]:
        """``GET /api/devices/``: my devices, revoked ones included."""
        return (await self.request("GET", "/api/devices/"))["devices"]

    async def revoke_device(self, device_id: int) -> None:
        """``DELETE /api/devices/<id>/``."""
        await self.request("DELETE", f"/api/devices/{int(device_id)}/")

    async def user_devices(self, username: str, *, include_revoked: bool = False) -> dict:
        """``GET /api/users/<username>/devices/``: ``{"user", "devices"}``."""
        query = {"include_revoked": 1} if include_revoked else None
        return await self.request("GET", f"/api/users/{_quote(username)}/devices/", query=query)

    async def lookup_key(self, kid: str) -> dict:
        """``GET /api/keys/<kid>/``: ``{"device", "user"}``, revoked devices included."""
        return await self.request("GET", f"/api/keys/{_quote(kid)}/")

    # --- linking a device and its history (§7.2, §7.3) ----------------------------------

    async def create_link_request(
        self, name: str, enc_spki: str, sig_spki: str, proof: str
    ) -> dict:
        """``POST /api/link-requests/``: this new device asks to join; the request."""
        body = {"name": name, "enc_spki": enc_spki, "sig_spki": sig_spki, "proof": proof}
        return (await self.request("POST", "/api/link-requests/", body))["link_request"]

    async def link_requests(self) -> list[dict]:
        """``GET /api/link-requests/``: my pending, unexpired requests, newest first."""
        return _unwrap(await self.request("GET", "/api/link-requests/"), "link_requests")

    async def link_request(self, request_id: int) -> dict:
        """``GET /api/link-requests/<id>/``: one request, with ``device`` and ``id_wrap``
        once approved."""
        answer = await self.request("GET", f"/api/link-requests/{int(request_id)}/")
        return _unwrap(answer, "link_request")

    async def approve_link_request(
        self, request_id: int, cert: str, id_wrap: dict, *, device_id: int
    ) -> dict:
        """``POST /api/link-requests/<id>/approve/`` from my device ``device_id``; returns
        the registered device."""
        path = f"/api/link-requests/{int(request_id)}/approve/"
        body = {"cert": cert, "id_wrap": id_wrap}
        answer = await self.request("POST", path, body, headers=_device_header(device_id))
        return answer["device"]

    async def deny_link_request(self, request_id: int) -> None:
        """``DELETE /api/link-requests/<id>/``: deny or cancel."""
        await self.request("DELETE", f"/api/link-requests/{int(request_id)}/")

    async def upload_history_keys(
        self, device_id: int, wraps: list[dict], *, acting_device_id: int
    ) -> int:
        """``POST /api/devices/<id>/history-keys/`` (at most 500 wraps) from my device
        ``acting_device_id``; returns how many were new."""
        path = f"/api/devices/{int(device_id)}/history-keys/"
        headers = _device_header(acting_device_id)
        return (await self.request("POST", path, {"wraps": wraps}, headers=headers))["stored"]

    # --- conversations, rosters and messages (§4, §8) -------------------------------------

    async def conversations(self) -> list[dict]:
        """``GET /api/conversations/``."""
        return (await self.request("GET", "/api/conversations/"))["conversations"]

    async def create_direct(self, username: str) -> dict:
        """``POST /api/conversations/`` ``{"members": [username]}``: the direct conversation
        with one person (the existing one, or new)."""
        body = {"members": [username]}
        return (await self.request("POST", "/api/conversations/", body))["conversation"]

    async def create_conversation(
        self, members: list[str], *, title: str | None = None, kind: str | None = None
    ) -> dict:
        """``POST /api/conversations/`` with the v1 body ``{"members", "title", "kind"?}``,
        for callers written before rosters: a v2 server takes it only for a direct
        conversation (use ``create_direct``; groups are ``create_group``)."""
        body: dict[str, Any] = {"members": list(members), "title": title}
        if kind is not None:
            body["kind"] = kind
        return (await self.request("POST", "/api/conversations/", body))["conversation"]

    async def create_group(self, gid: str, title: str | None, record: dict) -> dict:
        """``POST /api/conversations/`` ``{"gid", "title", "roster"}``: a new group whose
        roster starts with ``record`` (record 0, ``create``)."""
        body = {"gid": gid, "title": title, "roster": record}
        return (await self.request("POST", "/api/conversations/", body))["conversation"]

    async def accept_conversation(self, conversation_id: int) -> dict:
        """``POST /api/conversations/<id>/accept/``: accept a message request."""
        path = f"/api/conversations/{int(conversation_id)}/accept/"
        return (await self.request("POST", path))["conversation"]

    async def roster(self, conversation_id: int, *, after: int = -1) -> list[dict]:
        """``GET /api/conversations/<id>/roster/?after=``: records with n > ``after``."""
        path = f"/api/conversations/{int(conversation_id)}/roster/"
        return (await self.request("GET", path, query={"after": after}))["records"]

    async def post_roster_record(
        self, conversation_id: int, record: dict, *, gid: str | None = None
    ) -> dict:
        """``POST /api/conversations/<id>/roster/``: one signed record (with ``gid`` for
        record 0 of a v1 group); returns the conversation."""
        path = f"/api/conversations/{int(conversation_id)}/roster/"
        body = {"record": record} if gid is None else {"gid": gid, "record": record}
        return (await self.request("POST", path, body))["conversation"]

    async def history(
        self, conversation_id: int, *, before_seq: int | None = None, limit: int | None = None
    ) -> dict:
        """``GET .../messages/``: ``{"messages": [ascending seq], "has_more"}``."""
        path = f"/api/conversations/{int(conversation_id)}/messages/"
        return await self.request("GET", path, query={"before_seq": before_seq, "limit": limit})

    async def send_message(
        self,
        conversation_id: int,
        client_msg_id: str,
        envelope: dict,
        blobs: list[str] | None = None,
    ) -> dict:
        """``POST .../messages/``: store one envelope (naming ``blobs``, ids of my unsent
        uploads, when given); returns the message (also on a replay)."""
        path = f"/api/conversations/{int(conversation_id)}/messages/"
        body: dict[str, Any] = {"client_msg_id": client_msg_id, "envelope": envelope}
        if blobs:
            body["blobs"] = list(blobs)
        return (await self.request("POST", path, body))["message"]

    async def delete_message(self, conversation_id: int, message_id: int) -> None:
        """``DELETE .../messages/<id>/``: take my message back for everyone (§10.1)."""
        path = f"/api/conversations/{int(conversation_id)}/messages/{int(message_id)}/"
        await self.request("DELETE", path)


async def _pieces(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The pieces of a blocking iterator, each taken in a worker thread."""
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece


def _device_header(device_id: int) -> dict[str, str]:
    """``X-Device-Id``: which of my devices acts (approvals, history keys)."""
    return {"X-Device-Id": str(int(device_id))}


def _unwrap(answer: Any, key: str) -> Any:
    """``answer[key]`` when the answer wraps its object under ``key``, else the answer."""
    return answer[key] if isinstance(answer, dict) and key in answer else answer


def _answer(status: int, raw: bytes) -> Any:
    """The parsed JSON of an answer (None if empty or not JSON); an error status raises."""
    parsed = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    if status >= 400:
        raise _api_error(status, parsed, raw)
    return parsed


def _api_error(status: int, parsed: Any, raw: bytes) -> ChatApiError:
    body = read_error_body(parsed)
    if body is not None:
        return api_error(status, *body)
    text = raw[:200].decode("utf-8", "replace").strip() if raw else ""
    return api_error(status, code_of(status), f"HTTP {status}" + (f": {text}" if text else ""))
