"""In-process cost of one authenticated WebSocket connect, and the presence snapshot.

    .venv/bin/python -m bench.connect --sockets 400
    PYTHONPATH=/tmp/before .venv/bin/python -m bench.connect   # another tree, same bench

The cached scenario-2 population (SQLite, 200 devices in 100 direct conversations) is
copied; every device connects through the real ASGI application (`chatsite.asgi`: origin
check, session, auth, the consumer's connect) with `channels.testing.WebsocketCommunicator`
on the in-memory layer, one after the other, `--sockets` in all (round robin over the
devices). CPU is the whole process's (`time.process_time`: the event loop and the database
thread), so other load on the machine matters less than for the socket runs; the
communicator's own work is included, alike for both trees. The check: what each socket
got before the answer to a ping right after connecting (its presence snapshot) is only
`presence` frames of users already online; `snapshot_sha` digests every snapshot, so two
trees can be compared (the same population gives the same sha when they agree).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sockets", type=int, default=400)
    p.add_argument("--devices", type=int, default=200)
    args = p.parse_args()

    from bench.stacks import BENCH_SECRET_KEY, CACHE, schema_hash

    stem = CACHE / f"population-sqlite-n{args.devices}-k2-{schema_hash()}"
    if not stem.with_suffix(".sqlite3").exists():
        sys.exit(f"no cached population {stem}: run `bench.run sweep --scenario 2 --k 2` once")
    tmp = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    db = tmp / "db.sqlite3"
    shutil.copy(stem.with_suffix(".sqlite3"), db)
    plan = json.loads(stem.with_suffix(".json").read_text())
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DATABASE_URL=f"sqlite:///{db}",
        DJANGO_SECRET_KEY=BENCH_SECRET_KEY,
        CHAT_VAR_DIR=str(tmp / "var"),
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings

    settings.MAX_SOCKETS_PER_USER = settings.MAX_SOCKETS_PER_DEVICE = 10**6
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    devices = plan["devices"]

    async def run():
        sockets, times, wrong, snapshot = [], [], 0, []
        online = set()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        for i in range(args.sockets):
            d = devices[i % len(devices)]
            ws = WebsocketCommunicator(
                application,
                f"/ws/chat/?device={d['device_id']}",
                headers=[
                    (b"origin", plan["origin"].encode()),
                    (b"cookie", d["cookie"].encode()),
                    (b"host", plan["origin"].split("://", 1)[1].encode()),
                ],
            )
            c0 = time.process_time()
            connected, _ = await ws.connect(timeout=30)
            assert connected, d
            frames = []  # the snapshot: a ping's pong comes after everything connect sent
            await ws.send_to(text_data='{"type":"ping"}')
            while (frame := json.loads(await ws.receive_from(timeout=30))) != {"type": "pong"}:
                frames.append(frame)
            times.append(1e3 * (time.process_time() - c0))
            users = {f["user_id"] for f in frames if f.get("type") == "presence" and f["online"]}
            snapshot.append(sorted(users))
            if len(frames) != len(users) or not users <= online:
                wrong += 1
            online.add(d["user_id"])
            sockets.append(ws)
        cpu, wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
        for ws in sockets:
            await ws.disconnect()
        return cpu, wall, times, wrong, snapshot

    cpu, wall, times, wrong, snapshot = asyncio.run(run())
    times.sort()
    out = {
        "sockets": args.sockets,
        "cpu_ms_per_connect": round(1e3 * cpu / args.sockets, 3),
        "wall_ms_per_connect": round(1e3 * wall / args.sockets, 3),
        "cpu_p50_ms": round(times[len(times) // 2], 3),
        "cpu_p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "wrong_presence_snapshots": wrong,  # a frame not presence, or a user not online
        "presence_frames": sum(map(len, snapshot)),
        "snapshot_sha": hashlib.sha256(json.dumps(snapshot).encode()).hexdigest()[:12],
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(out))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
