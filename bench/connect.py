"""In-process cost of one authenticated WebSocket connect, and the presence snapshot.

    .venv/bin/python -m bench.connect --sockets 400 [--concurrency 50]
    PYTHONPATH=/tmp/before .venv/bin/python -m bench.connect   # another tree, same bench

The cached scenario-2 population (SQLite, 200 devices in 100 direct conversations, each
accepted: bench.population's CACHE_TAG) is copied; every device connects through the
real ASGI application (`chatsite.asgi`: origin check, session, auth, the consumer's
connect) with `channels.testing.WebsocketCommunicator` on the in-memory layer, one after
the other or, with `--concurrency C`, as a storm with C handshakes under way at once,
`--sockets` in all (round robin over the devices). CPU is the whole process's
(`time.process_time`: the event loop and the database thread), so other load on the
machine matters less than for the socket runs; the communicator's own work is included,
alike for both trees. The checks: one after the other, what each socket got before the
answer to a ping right after connecting (its presence snapshot) is only `presence` frames
of users already online (`wrong_presence_snapshots`); in both modes, each socket was told
each of its peers online exactly once, by its snapshot or by an announcement, and nothing
else (`wrong_presence_totals`). `snapshot_sha` digests every snapshot, so two trees can
be compared (the same population gives the same sha when they agree, one after the
other).
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
    p.add_argument(
        "--concurrency", type=int, default=1, help="handshakes under way at once (1: in turn)"
    )
    args = p.parse_args()

    from bench.population import CACHE_TAG
    from bench.stacks import BENCH_SECRET_KEY, CACHE, schema_hash

    stem = CACHE / f"population-sqlite-n{args.devices}-k2-{schema_hash()}{CACHE_TAG}"
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

    user_of = [d["user_id"] for d in devices]
    peers = {uid: set() for uid in user_of}  # in touch: every conversation is accepted
    for conv in plan["conversations"]:
        members = {user_of[m] for m in conv["members"]}
        for uid in members:
            peers[uid] |= members - {uid}

    def communicator(d):
        return WebsocketCommunicator(
            application,
            f"/ws/chat/?device={d['device_id']}",
            headers=[
                (b"origin", plan["origin"].encode()),
                (b"cookie", d["cookie"].encode()),
                (b"host", plan["origin"].split("://", 1)[1].encode()),
            ],
        )

    async def frames_until_pong(ws):
        frames = []  # the snapshot: a ping's pong comes after everything connect sent
        await ws.send_to(text_data='{"type":"ping"}')
        while (frame := json.loads(await ws.receive_from(timeout=60))) != {"type": "pong"}:
            frames.append(frame)
        return frames

    async def rest(ws):
        """What else came (announcements may follow the pong), until 0.2 s of quiet."""
        frames = []
        while not await ws.receive_nothing(timeout=0.2, interval=0.02):
            frames.append(json.loads(await ws.receive_from()))
        return frames

    async def run():
        sockets, times, wrong, snapshot, got = [], [], 0, [], []
        online = set()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        if args.concurrency > 1:  # a storm: `concurrency` handshakes under way at once
            gate = asyncio.Semaphore(args.concurrency)

            async def one(i):
                async with gate:
                    ws = communicator(devices[i % len(devices)])
                    connected, _ = await ws.connect(timeout=60)
                    assert connected
                    return ws, await frames_until_pong(ws)

            done = await asyncio.gather(*(one(i) for i in range(args.sockets)))
            sockets = [ws for ws, _ in done]
            got = [frames for _, frames in done]
        for i in range(args.sockets if args.concurrency <= 1 else 0):
            d = devices[i % len(devices)]
            ws = communicator(d)
            c0 = time.process_time()
            connected, _ = await ws.connect(timeout=30)
            assert connected, d
            frames = await frames_until_pong(ws)
            times.append(1e3 * (time.process_time() - c0))
            users = {f["user_id"] for f in frames if f.get("type") == "presence" and f["online"]}
            snapshot.append(sorted(users))
            if len(frames) != len(users) or not users <= online:
                wrong += 1
            online.add(d["user_id"])
            sockets.append(ws)
            got.append(frames)
        cpu, wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
        # Every socket, snapshot and announcements together, is told each online peer
        # online exactly once, and nothing else.
        later = await asyncio.gather(*(rest(ws) for ws in sockets))
        told_wrong = 0
        connected_users = {user_of[i % len(devices)] for i in range(args.sockets)}
        for i, frames in enumerate(got):
            all_frames = frames + later[i]
            told = [f["user_id"] for f in all_frames if f.get("type") == "presence" and f["online"]]
            want = peers[user_of[i % len(devices)]] & connected_users
            if len(told) != len(all_frames) or sorted(told) != sorted(want):
                told_wrong += 1
        if args.concurrency > 1:
            snapshot = [sorted(f["user_id"] for f in frames) for frames in got]
        for ws in sockets:
            await ws.disconnect()
        return cpu, wall, times or [1e3 * cpu / args.sockets], wrong, snapshot, told_wrong

    cpu, wall, times, wrong, snapshot, told_wrong = asyncio.run(run())
    times.sort()
    out = {
        "sockets": args.sockets,
        "cpu_ms_per_connect": round(1e3 * cpu / args.sockets, 3),
        "wall_ms_per_connect": round(1e3 * wall / args.sockets, 3),
        "cpu_p50_ms": round(times[len(times) // 2], 3),
        "cpu_p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "concurrency": args.concurrency,
        "wrong_presence_snapshots": wrong,  # a frame not presence, or a user not online
        # sockets not told each online peer exactly once (snapshot + announcements)
        "wrong_presence_totals": told_wrong,
        "presence_frames": sum(map(len, snapshot)),
        "snapshot_sha": hashlib.sha256(json.dumps(snapshot).encode()).hexdigest()[:12],
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(out))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
