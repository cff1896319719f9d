"""A tiny ASGI app for testing the process helpers without the Django project.

HTTP: 200 with body `ok <pid>`. WebSocket: accepts, echoes text frames.
"""

import os


async def application(scope, receive, send):
    if scope["type"] == "http":
        await receive()
        body = f"ok {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        while True:
            event = await receive()
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif event["type"] == "websocket.receive":
                await send({"type": "websocket.send", "text": event.get("text") or ""})
            else:
                return
    elif scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
