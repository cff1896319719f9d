"""`python -m chatsite.serve …`: daphne's own command line (same options), with request
bodies handed to the application from disk as it reads them.

Stock daphne (4.2) waits for the whole body, which twisted.web keeps in a temporary file
(`Request.content`), then puts all of it on the application's input queue at once in
8 KiB messages: a 100 MiB upload took ~106 MiB of the worker's memory (daphne issue #483).
Here daphne's body messages are counted and dropped, and the application is told once
where the body lies (`BODY_FILE`); `chatsite.bodylimit.BodyLimit`, the first layer of the
application, turns that back into ordinary `http.request` messages read from the file a
chunk at a time. Under plain daphne (no `BODY_FILE`) the application works the same.

It also logs the worker's start and stop as JSON (`worker started` / `worker stopping` /
`worker drained` / `worker stopped` with pid, host, port and worker id) and keeps presence
honest across restarts: once listening it deletes the presence rows of the process that
held its port before, and at a stop the rows of its own sockets.

**A prompt stop (SIGTERM).** Stock daphne cancels every application at shutdown. A
consumer cancelled while its database thread is storing a message leaves that thread
running; the store's on-commit publish then waits (`async_to_sync`) for the event loop,
which has stopped, and the interpreter's exit waits for that thread forever (py-spy:
`_python_exit` joining `ThreadPoolExecutor-0_0`, blocked in
`CurrentThreadExecutor.run_until_future` under `publish_conversation`): the worker logged
"worker stopped" and lingered until systemd's SIGKILL. So here a stop first stops
listening (nginx hands new handshakes to the other workers), closes every open WebSocket
with a close frame, 1000 (the same `websocket.close` an application sends; clients
reconnect elsewhere, `sync` and resend unacknowledged sends by `client_msg_id`), and gives
the applications up to `DRAIN_SECONDS` to finish on a running loop (the consumers' own
disconnect runs: presence rows go, in-flight stores commit and publish) before daphne
cancels what is left. Then, once daphne's server has returned ("worker stopped"), the
process ends at once (`os._exit` after flushing its output) instead of tearing the
interpreter down: that teardown (freeing Django, Twisted and their modules) took 3-6 s of
CPU on a loaded machine (py-spy: the main thread busy with no Python frame left), and it
would also wait for a thread still blocked on the stopped loop. Nothing is lost by it: the
sockets are closed and drained, and a store cut short is rolled back by the database and
resent by its client (no ack came).
"""

import asyncio
import gc
import logging
import os
import sys
import time

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, reactor, threads

logger = logging.getLogger("chatsite.worker")

#: Extension key of the one `http.request` message that stands for the whole body:
#: (twisted's Request.content file, body length).
BODY_FILE = "chatsite.body_file"

#: WebSocket close code for a stopping worker: 1000, a normal closure; clients reconnect
#: after any close but 4401/4403. (1001 "going away" or 1012 "service restart" would say
#: more, but autobahn, daphne's WebSocket layer, sends only 1000 or 3000-4999, and a new
#: 4xxx code would be a change to the protocol for no gain.)
SERVICE_RESTART = 1000
#: How long a stop waits for the applications to finish after closing their sockets.
DRAIN_SECONDS = 2.0
#: Allocations between two collections of Python's youngest generation (Python's default
#: is 700; `freeze_startup_heap`). `GC_THRESHOLD0` in the environment overrides it.
GC_THRESHOLD0 = int(os.environ.get("GC_THRESHOLD0", "50000"))


class BodyOnDisk:
    """Stands between daphne and the application's input queue for one HTTP request."""

    def __init__(self, queue, content):
        self.queue = queue
        self.content = content
        self.length = 0
        self.done = False

    def put_nowait(self, message: dict) -> None:
        if message.get("type") == "http.request" and not self.done:
            self.length += len(message.get("body", b""))  # the bytes are in the file too
            if not message.get("more_body", False):
                self.done = True
                self.queue.put_nowait(
                    {
                        "type": "http.request",
                        "body": b"",
                        "more_body": True,
                        BODY_FILE: (self.content, self.length),
                    }
                )
            return
        self.queue.put_nowait(message)


class ChatServer(Server):
    """daphne's Server; HTTP requests whose body twisted.web spooled to a file get a
    `BodyOnDisk` (WebSockets and small in-memory bodies are left as daphne does them).
    Logs start and stop and cleans presence rows (module docstring)."""

    def _worker(self) -> dict:
        from messaging import presence  # Django is set up once daphne loaded the app

        return {"pid": os.getpid(), "host": presence.HOST, "port": presence.PORT,
                "worker": presence.WORKER_ID}  # fmt: skip

    def listen_success(self, port):
        super().listen_success(port)
        from messaging import presence

        if hasattr(port, "stopListening"):
            self._ports = [*getattr(self, "_ports", []), port]
        if presence.PORT is None and hasattr(port, "getHost"):
            presence.PORT = port.getHost().port
            logger.info("worker started", extra=self._worker())
            reactor.addSystemEventTrigger("before", "shutdown", self._stopping)
            threads.deferToThread(presence.forget_earlier_on_port, presence.PORT).addCallbacks(
                lambda n: n and logger.info("cleared presence rows of the port's last process",
                                            extra={**self._worker(), "rows": n}),
                lambda failure: logger.warning("presence cleanup failed: %s",
                                               failure.getErrorMessage()),
            )  # fmt: skip

    def _stopping(self):
        from messaging import presence

        logger.info("worker stopping", extra=self._worker())
        deferred = threads.deferToThread(presence.forget_worker)
        deferred.addErrback(
            lambda failure: logger.warning("presence rows left: %s", failure.getErrorMessage())
        )
        return deferred

    def kill_all_applications(self):
        """daphne's shutdown step (a "before shutdown" trigger), after a drain: stop
        listening, close the open WebSockets (1000), wait up to DRAIN_SECONDS for the
        applications to end; then daphne cancels whatever is left."""
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(self._drain()))
        drained.addErrback(lambda failure: logger.warning("drain failed: %s", failure.value))
        drained.addCallback(lambda _: super(ChatServer, self).kill_all_applications())
        return drained

    async def _drain(self) -> None:
        started = time.monotonic()
        for port in getattr(self, "_ports", []):
            port.stopListening()
        sockets = [
            protocol
            for protocol, details in list(self.connections.items())
            if isinstance(protocol, WebSocketProtocol)
            and "disconnected" not in details
            and protocol.state == WebSocketProtocol.STATE_OPEN
        ]
        for protocol in sockets:  # what an application's {"type": "websocket.close"} does
            protocol.handle_reply({"type": "websocket.close", "code": SERVICE_RESTART})
        running = [
            details["application_instance"]
            for details in self.connections.values()
            if details.get("application_instance") is not None
            and not details["application_instance"].done()
        ]
        left = set()
        if running:
            _, left = await asyncio.wait(running, timeout=DRAIN_SECONDS)
        logger.info(
            "worker drained",
            extra={**self._worker(), "sockets_closed": len(sockets), "applications_left": len(left),
                   "seconds": round(time.monotonic() - started, 3)},
        )  # fmt: skip

    def run(self):
        freeze_startup_heap()
        try:
            super().run()
        finally:
            logger.info("worker stopped", extra=self._worker())

    def create_application(self, protocol, scope):
        queue = super().create_application(protocol, scope)
        content = getattr(protocol, "content", None)
        if queue is None or scope.get("type") != "http" or not _is_disk_file(content):
            return queue
        return BodyOnDisk(queue, content)


def freeze_startup_heap() -> None:
    """Collect once, move every object alive at start (Django, the apps, their modules:
    about 133,000 tracked objects) out of the collector's reach (`gc.freeze`), and give the
    youngest generation `GC_THRESHOLD0` allocations instead of Python's 700.

    A full (generation 2) collection walks every tracked object while the event loop
    waits. With the startup heap in it, each one walked ~170,000 objects and paused a
    loaded worker 100-440 ms several times a minute (the chat's tail stalls in the bench,
    `latency_by_s`); with 10,000 idle sockets, short-lived objects (daphne's pings, the
    presence refresh) were promoted to the old generation and a full collection of the
    whole heap took ~2 s of CPU about once a minute (py-spy: `gc_collect_main`; the 20-s
    windows went from 7% to 17%). Frozen, full collections walk only what serving made;
    with a larger young generation those objects die young. Objects made at start live as
    long as the process, so nothing that could be freed is kept."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])


def exit_now() -> None:
    """End the process without the interpreter's teardown (module docstring), its output
    flushed first."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _is_disk_file(content) -> bool:
    try:
        content.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class ChatCommandLine(CommandLineInterface):
    server_class = ChatServer


if __name__ == "__main__":
    ChatCommandLine.entrypoint()  # returns once the server has stopped
    exit_now()
