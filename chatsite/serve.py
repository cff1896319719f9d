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
`worker stopped` with pid, host, port and worker id) and keeps presence honest across
restarts: once listening it deletes the presence rows of the process that held its port
before, and at a clean stop (SIGTERM: daphne cancels every socket's consumer, whose own
cleanup then never runs) the rows of its own sockets.
"""

import logging
import os

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor, threads

logger = logging.getLogger("chatsite.worker")

#: Extension key of the one `http.request` message that stands for the whole body:
#: (twisted's Request.content file, body length).
BODY_FILE = "chatsite.body_file"


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

    def run(self):
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


def _is_disk_file(content) -> bool:
    try:
        content.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class ChatCommandLine(CommandLineInterface):
    server_class = ChatServer


if __name__ == "__main__":
    ChatCommandLine.entrypoint()
