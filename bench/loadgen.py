#!/usr/bin/env python
"""Open-loop load generator for the chat (PROTOCOL §5) and for the minimal Channels room.

Targets:
  chat  /ws/chat/?device=<id> with the device's session cookie and Origin; sends real
        `send` frames whose v2 envelopes were sealed and signed before the run
        (bench.envelopes; each device sends its own in order, so their counters rise),
        so the generator's own crypto is not in the measured window; times every `message`
        copy that reaches a member device (the sender's own device included).
  room  ../shared/anchors/channels_baseline: /ws/room/<name>/ echoes every JSON frame to its
        group; frames {"id","t","pad"} padded to the size of the chat's send frames.

Load: every device belongs to one conversation (plan); R messages/s are offered in total,
each device sending on a fixed schedule (one message every N/R s, phase-shifted so the
combined stream is even). The first --warmup seconds are not timed. Loss is counted over
every message sent, warmup included; with --sync-check, copies missing at the end are
looked for with `sync` (were they stored, i.e. can a client fill the gap?).

Idle (--idle C): open C authenticated sockets (round-robin over the plan's devices), hold
them, report connected/open, RSS per socket and idle CPU of the server processes.

The last stdout line is the JSON result; a readable summary goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bench import sysstat

now_ns = time.perf_counter_ns
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MSG_PREFIX = '{"type":"message"'
CMID_KEY = '"client_msg_id":"'


def ms_stats(values_ns):
    v = sorted(values_ns)
    if not v:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}

    def q(p):
        return round(v[min(len(v) - 1, int(p * len(v)))] / 1e6, 3)

    return {
        "p50": q(0.5),
        "p95": q(0.95),
        "p99": q(0.99),
        "max": round(v[-1] / 1e6, 3),
        "mean": round(sum(v) / len(v) / 1e6, 3),
    }


class Conn:
    __slots__ = ("idx", "conv", "bit", "ws", "reader", "pinger", "frames", "connect_ns", "synced")

    def __init__(self, idx, conv, bit):
        self.idx, self.conv, self.bit = idx, conv, bit
        self.ws = self.reader = self.pinger = None
        self.frames = []
        self.synced = []
        self.connect_ns = None


def peer_users(plan: dict) -> list[set[int]]:
    """Per device, the other users of its conversations (each accepted: in touch, §6)."""
    user_of = [d["user_id"] for d in plan["devices"]]
    peers = [set() for _ in user_of]
    for conv in plan["conversations"]:
        for m in conv["members"]:
            peers[m] |= {user_of[o] for o in conv["members"] if user_of[o] != user_of[m]}
    return peers


def presence_due(plan: dict, live: list, n_dev: int) -> int:
    """How many `presence` frames saying "online" the live sockets are due (§6): each
    socket, one for every peer user with a live socket."""
    user_of = [d["user_id"] for d in plan["devices"]]
    online = {user_of[c.idx % n_dev] for c in live}
    peers = peer_users(plan)
    return sum(len(peers[c.idx % n_dev] & online) for c in live)


def presence_wrong_sockets(plan: dict, live: list, n_dev: int) -> int:
    """How many sockets were not told exactly what PROTOCOL §6 says: each online peer
    (here every other member of its conversations, all connected) online once, by its
    snapshot or an announcement, and nothing else."""
    peers = peer_users(plan)
    wrong = 0
    for c in live:
        told = [(f.get("online"), f.get("user_id")) for f in c.frames]
        if sorted(told) != sorted((True, uid) for uid in peers[c.idx % n_dev]):
            wrong += 1
    return wrong


def latency_by_second(lat_at: list[tuple[int, int]]) -> list[list]:
    """[second from the first measured send, copies, p50 ms, max ms] per second of sending:
    a stall shows as one second whose max stands out."""
    if not lat_at:
        return []
    start = min(t for t, _ in lat_at)
    by_s: dict[int, list[int]] = {}
    for t, lat in lat_at:
        by_s.setdefault((t - start) // 1_000_000_000, []).append(lat)
    out = []
    for sec in sorted(by_s):
        lats = sorted(by_s[sec])
        out.append([sec, len(lats), round(lats[len(lats) // 2] / 1e6, 1), round(lats[-1] / 1e6, 1)])
    return out


class Run:
    """State of one load run: what was sent, acked and received, by whom, when."""

    def __init__(self, args, plan):
        self.args, self.plan = args, plan
        self.sent = {}  # key -> [t_send_ns, conv, measured, seq or None]
        self.masks = {}  # key -> bitmask of members that got a copy
        self.lat, self.lag, self.ack_lat = [], [], []
        self.lat_at = []  # (t_send_ns, latency_ns) of measured copies, for latency_by_s
        self.n = Counter()
        self.errors = Counter()
        self.closing = False
        self.syncing = False
        self.presence_due = 0  # "online" presence frames still to come (chat)
        self.presence_done = asyncio.Event()
        self.tls = None
        if args.cafile:
            self.tls = ssl.create_default_context(cafile=args.cafile)

    # ---------------------------------------------------------------- connections
    def url_and_headers(self, dev_idx, conv_idx):
        base = self.args.url_base[dev_idx % len(self.args.url_base)]
        if self.args.target == "chat":
            d = self.plan["devices"][dev_idx]
            return (
                f"{base}/ws/chat/?device={d['device_id']}",
                {"Cookie": d["cookie"]},
                self.plan["origin"],
            )
        return f"{base}/ws/room/{self.args.room_prefix}{conv_idx}/", {}, None

    async def open_conns(self, conns):
        sem = asyncio.Semaphore(self.args.connect_concurrency)

        async def one(c, dev_idx):
            url, headers, origin = self.url_and_headers(dev_idx, c.conv)
            async with sem:
                t = now_ns()
                try:
                    c.ws = await connect(
                        url,
                        additional_headers=headers,
                        origin=origin,
                        compression=None,
                        ping_interval=None,
                        open_timeout=self.args.open_timeout,
                        close_timeout=2,
                        max_size=4 * 1024 * 1024,
                        ssl=self.tls,
                        proxy=None,
                        max_queue=None if self.args.idle else 4096,
                    )
                    c.connect_ns = now_ns() - t
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    self.errors[f"connect:{type(e).__name__}"] += 1
                if self.args.connect_pause:
                    await asyncio.sleep(self.args.connect_pause)

        t0 = now_ns()
        await asyncio.gather(*(one(c, dev) for c, dev in conns))
        live = [c for c, _ in conns if c.ws is not None]
        st = ms_stats([c.connect_ns for c in live])
        return live, {
            "wall_s": round((now_ns() - t0) / 1e9, 2),
            "p50_ms": st["p50"],
            "p99_ms": st["p99"],
            "max_ms": st["max"],
        }

    async def close_all(self, live):
        self.closing = True
        sem = asyncio.Semaphore(200)

        async def one(c):
            async with sem:
                with contextlib.suppress(Exception):  # teardown
                    await asyncio.wait_for(c.ws.close(), 5)

        await asyncio.gather(*(one(c) for c in live))
        for c in live:
            if c.reader:
                c.reader.cancel()
        await asyncio.gather(*(c.reader for c in live if c.reader), return_exceptions=True)

    # ---------------------------------------------------------------- receive paths
    def on_copy(self, key, c, t):
        info = self.sent.get(key)
        if info is None:
            self.n["unknown"] += 1
            return
        if info[1] != c.conv:
            self.n["misrouted"] += 1
            return
        m = self.masks.get(key, 0)
        if m & c.bit:
            if not self.syncing:  # sync re-sends what a device has: not a duplicate
                self.n["duplicates"] += 1
            return
        self.masks[key] = m | c.bit
        self.n["copies"] += 1
        if info[2]:
            self.lat.append(t - info[0])
            self.lat_at.append((info[0], t - info[0]))
            self.n["delivered"] += 1

    async def chat_reader(self, c):
        try:
            async for text in c.ws:
                t = now_ns()
                if text.startswith(MSG_PREFIX):
                    i = text.find(CMID_KEY, 0, 400)
                    if i >= 0:
                        i += len(CMID_KEY)
                        self.on_copy(text[i : i + 36], c, t)
                        continue
                frame = json.loads(text)
                kind = frame.get("type")
                if kind == "message":
                    self.on_copy(frame["message"]["client_msg_id"], c, t)
                elif kind == "ack":
                    info = self.sent.get(frame["client_msg_id"])
                    if info is not None and info[3] is None:
                        info[3] = frame["seq"]
                        self.n["acked"] += 1
                        if info[2]:
                            self.ack_lat.append(t - info[0])
                elif kind == "error":
                    self.errors[f"error:{frame.get('code')}"] += 1
                elif kind == "synced":
                    c.synced.append(frame)
                elif kind == "presence":
                    self.n["frame:presence"] += 1
                    if frame.get("online"):
                        self.presence_due -= 1
                        if self.presence_due <= 0:
                            self.presence_done.set()
                elif kind in (
                    "typing",
                    "read",
                    "conversation",
                    "pong",
                    "devices_changed",
                ):
                    self.n[f"frame:{kind}"] += 1
                else:
                    self.n[f"frame:{kind}"] += 1
        except ConnectionClosed as e:
            if not self.closing:
                self.errors[f"closed:{e.rcvd.code if e.rcvd else 'abnormal'}"] += 1
            return
        if not self.closing:
            self.errors["closed:by-server"] += 1

    async def room_reader(self, c):
        try:
            async for text in c.ws:
                t = now_ns()
                obj = json.loads(text)
                self.on_copy(obj["id"], c, t)
        except ConnectionClosed as e:
            if not self.closing:
                self.errors[f"closed:{e.rcvd.code if e.rcvd else 'abnormal'}"] += 1
            return
        if not self.closing:
            self.errors["closed:by-server"] += 1


# -------------------------------------------------------------------------------- load
async def run_load(args, plan):
    run = Run(args, plan)
    convs = plan["conversations"]
    n_dev = len(plan["devices"])
    k = plan["room_size"]
    conns = []
    for ci, conv in enumerate(convs):
        for pos, dev in enumerate(conv["members"]):
            conns.append((Conn(dev, ci, 1 << pos), dev))
    conns.sort(key=lambda cd: cd[1])

    # Frames made before connecting: chat = sealed and signed envelopes, room = padded JSON.
    n_send = min(args.senders or n_dev, n_dev)
    senders = {dev for _, dev in conns[:n_send]} if args.senders else None
    per_dev = int((args.warmup + args.duration) * args.rate / n_send) + 2
    t_prep = time.monotonic()
    if args.target == "chat":
        from bench import envelopes

        frames = envelopes.prepare(
            plan,
            per_dev,
            args.run_tag,
            text_chars=args.text_chars,
            workers=args.prep_workers,
            only=senders,
        )
        for c, dev in conns:
            c.frames = frames.get(dev, [])  # list of (client_msg_id, text)
    else:
        pad = "x" * max(0, args.pad)
        for c, dev in conns:
            c.frames = (
                [(f"{dev}:{m}", pad) for m in range(per_dev)]
                if senders is None or dev in senders
                else []
            )
    prep_s = time.monotonic() - t_prep
    frame_bytes = frame_size(conns, args)

    live, connect_info = await run.open_conns(conns)
    reader = run.chat_reader if args.target == "chat" else run.room_reader
    presence = None
    if args.target == "chat":  # sends start once every socket heard its online peers
        run.presence_due = presence_due(plan, live, n_dev)
        if run.presence_due <= 0:
            run.presence_done.set()
        presence = {"due": run.presence_due}
    for c in live:
        c.reader = asyncio.create_task(reader(c))
    if presence is not None:
        t_presence = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.presence_done.wait(), args.presence_timeout)
        presence["complete"] = run.presence_done.is_set()
        presence["wait_s"] = round(time.monotonic() - t_presence, 2)
    await asyncio.sleep(args.settle)
    gc.collect()
    gc.freeze()

    if args.ready_file:  # for bench.run profile: the load starts now
        Path(args.ready_file).write_text("1")
    R = args.rate
    start = now_ns() + 200_000_000
    m0 = start + int(args.warmup * 1e9)
    m1 = m0 + int(args.duration * 1e9)
    interval = n_send * 1e9 / R
    pids = args.server_pid
    snaps = {}

    async def sender(j, c):
        sched = start + j * 1e9 / R
        ws, conv = c.ws, c.conv
        frames = c.frames
        m = 0
        is_chat = args.target == "chat"
        while sched < m1 and m < len(frames):
            d = sched - now_ns()
            if d > 0:
                await asyncio.sleep(d / 1e9)
            key, text = frames[m]
            m += 1
            measured = sched >= m0
            t = now_ns()
            if is_chat:
                run.sent[key] = [t, conv, measured, None]
            else:
                key = m - 1 + c.idx * 1_000_000
                run.sent[key] = [t, conv, measured, None]
                text = f'{{"id":{key},"t":{t},"pad":"{text}"}}'
            try:
                await ws.send(text)
            except ConnectionClosed:
                run.sent[key][2] = False
                run.errors["send:closed"] += 1
                return
            run.n["sent_all"] += 1
            if measured:
                run.n["sent"] += 1
                run.lag.append(t - int(sched))
            sched += interval

    async def snapshot(at, key):
        await asyncio.sleep(max(0, (at - now_ns()) / 1e9))
        snaps[key] = sysstat.snapshot(pids)

    tasks = [asyncio.create_task(snapshot(m0, "m0")), asyncio.create_task(snapshot(m1, "m1"))]
    await asyncio.gather(*(sender(j, c) for j, c in enumerate(live[:n_send])))
    await asyncio.gather(*tasks)

    expected_all = run.n["sent_all"] * k
    drain_end = now_ns() + int(args.drain * 1e9)
    while run.n["copies"] < expected_all and now_ns() < drain_end:
        await asyncio.sleep(0.05)
    drain_s = (now_ns() - snaps["m1"]["t_ns"]) / 1e9
    open_at_end = sum(1 for c in live if c.ws.state is State.OPEN)

    lost_all = expected_all - run.n["copies"]
    sync_info = None
    if args.target == "chat" and lost_all and args.sync_check:
        sync_info = await sync_check(run, live, k)
    await run.close_all(live)
    gc.unfreeze()

    cpu = sysstat.window(snaps["m0"], snaps["m1"])
    sent = run.n["sent"]
    res = {
        "mode": "load",
        "target": args.target,
        "tag": args.tag,
        "url_base": args.url_base,
        "devices": n_dev,
        "connected": len(live),
        "open_at_end": open_at_end,
        "room_size": k,
        "rate": R,
        "duration": args.duration,
        "warmup": args.warmup,
        "prep_s": round(prep_s, 1),
        "frame_bytes": frame_bytes,
        "sent": sent,
        "sent_all": run.n["sent_all"],
        "acked": run.n["acked"] if args.target == "chat" else None,
        "expected": sent * k,
        "delivered": run.n["delivered"],
        "expected_all": expected_all,
        "copies_all": run.n["copies"],
        "lost": lost_all,
        "duplicates": run.n["duplicates"],
        "misrouted": run.n["misrouted"],
        "unknown": run.n["unknown"],
        "delivered_per_s": round(run.n["delivered"] / args.duration, 1),
        "latency_ms": ms_stats(run.lat),
        "latency_by_s": latency_by_second(run.lat_at),
        "ack_ms": ms_stats(run.ack_lat),
        "send_lag_ms": ms_stats(run.lag),
        "drain_s": round(drain_s, 2),
        "connect": connect_info,
        "presence": presence,
        "errors": dict(run.errors),
        "sync_check": sync_info,
        "other_frames": {k2: v for k2, v in run.n.items() if k2.startswith("frame:")},
        **cpu,
    }
    srv_cpu = sum(s["cpu_s"] for s in res["servers"])
    res["server_cpu_s"] = round(srv_cpu, 3)
    res["server_cpu_ms_per_msg"] = round(1000 * srv_cpu / sent, 3) if sent else None
    res["server_cpu_ms_per_copy"] = (
        round(1000 * srv_cpu / run.n["delivered"], 3) if run.n["delivered"] else None
    )
    p99 = res["latency_ms"]["p99"]
    res["pass"] = bool(
        len(live) == n_dev
        and open_at_end == len(live)
        and not run.errors
        and lost_all == 0
        and not run.n["duplicates"]
        and not run.n["misrouted"]
        and p99 is not None
        and p99 <= args.p99_limit_ms
        and res["send_lag_ms"]["p99"] <= args.p99_limit_ms
        and (args.target != "chat" or run.n["acked"] == run.n["sent_all"])
        and (presence is None or presence["complete"])
    )
    return res


def frame_size(conns, args):
    c = conns[0][0]
    if not c.frames:
        return None
    if args.target == "chat":
        return sum(len(t) for _, t in c.frames[:20]) // min(20, len(c.frames))
    return len(f'{{"id":1000000,"t":{now_ns()},"pad":"{c.frames[0][1]}"}}')


async def sync_check(run, live, k):
    """For copies a device missed, ask the server with `sync`: stored (a client can fill
    the gap) or not. Counts recoverable and unrecoverable copies."""
    missing_by_conn = {}
    unacked = 0
    for key, info in run.sent.items():
        mask = run.masks.get(key, 0)
        if info[3] is None:
            unacked += 1
        for c in live:
            if c.conv == info[1] and not mask & c.bit:
                missing_by_conn.setdefault(c, []).append((key, info[3]))
    recovered = unrecoverable = 0
    run.syncing = True
    for c, items in missing_by_conn.items():
        seqs = [s for _, s in items if s is not None]
        if not seqs or c.ws.state is not State.OPEN:
            unrecoverable += len(items)
            continue
        want = {key for key, _ in items}
        conv_id = run.plan["conversations"][c.conv]["id"]
        cursor = min(seqs) - 1
        for _ in range(20):  # bounded: 20 pages of 500
            c.synced.clear()
            await c.ws.send(json.dumps({"type": "sync", "cursors": {str(conv_id): cursor}}))
            for _ in range(200):
                if c.synced:
                    break
                await asyncio.sleep(0.05)
            if not c.synced:
                break
            synced = c.synced[0]
            cursor = synced["cursors"].get(str(conv_id), cursor)
            if not synced["has_more"].get(str(conv_id)):
                break
        got = sum(1 for key in want if run.masks.get(key, 0) & c.bit)
        recovered += got
        unrecoverable += len(want) - got
    return {
        "missing_copies": sum(len(v) for v in missing_by_conn.values()),
        "recovered_by_sync": recovered,
        "unrecoverable": unrecoverable,
        "sends_without_ack": unacked,
    }


# -------------------------------------------------------------------------------- idle
IDLE_WINDOW = 20  # s: the presence refresh's bursts show in windows this short


async def run_idle(args, plan):
    run = Run(args, plan)
    n_dev = len(plan["devices"])
    conv_of = {}
    for ci, conv in enumerate(plan["conversations"]):
        for dev in conv["members"]:
            conv_of[dev] = ci
    conns = [(Conn(i, conv_of[i % n_dev], 1), i % n_dev) for i in range(args.idle)]
    pids = args.server_pid
    s0 = sysstat.snapshot(pids)

    async def drain(c):
        try:
            async for text in c.ws:
                run.n["idle_frames"] += 1
                if '"presence"' in text:  # what this socket was told (checked at the end)
                    c.frames.append(json.loads(text))
        except ConnectionClosed as e:
            if not run.closing:
                run.errors[f"closed:{e.rcvd.code if e.rcvd else 'abnormal'}"] += 1

    async def keep_alive(c, phase):
        # as static/chat/socket.js: {"type":"ping"} every PING_EVERY, phase-shifted
        await asyncio.sleep(phase)
        while True:
            await c.ws.send('{"type":"ping"}')
            await asyncio.sleep(args.idle_ping)

    live, connect_info = await run.open_conns(conns)
    for i, c in enumerate(live):
        c.reader = asyncio.create_task(drain(c))
        if args.idle_ping and args.target == "chat":
            c.pinger = asyncio.create_task(keep_alive(c, args.idle_ping * i / len(live)))
    s_conn = sysstat.snapshot(pids)
    await asyncio.sleep(args.settle)
    s1 = sysstat.snapshot(pids)
    windows, sa, left = [], s1, args.duration  # idle CPU per IDLE_WINDOW s: bursts show
    while left > 0:
        await asyncio.sleep(min(IDLE_WINDOW, left))
        left -= IDLE_WINDOW
        sb = sysstat.snapshot(pids)
        w = sysstat.window(sa, sb)
        windows.append(round(sum(x["cpu_pct"] for x in w["servers"]), 1))
        sa = sb
    s2 = sa
    open_at_end = sum(1 for c in live if c.ws.state is State.OPEN)
    presence_wrong = None
    if args.target == "chat" and len(live) == args.idle:
        presence_wrong = presence_wrong_sockets(plan, live, n_dev)
    for c in live:
        if c.pinger:
            c.pinger.cancel()
    await run.close_all(live)
    hold = sysstat.window(s1, s2)
    servers = []
    for pid in pids:
        a, b, conn_s = s0["procs"].get(pid), s2["procs"].get(pid), s_conn["procs"].get(pid)
        if a and b:
            servers.append(
                {
                    "pid": pid,
                    "comm": b["comm"],
                    "rss_kb_before": a["rss_kb"],
                    "rss_kb_connected": conn_s["rss_kb"] if conn_s else None,
                    "rss_kb_after": b["rss_kb"],
                    "rss_kb_per_socket": round((b["rss_kb"] - a["rss_kb"]) / max(1, len(live)), 2),
                    "connect_cpu_s": round(conn_s["cpu_s"] - a["cpu_s"], 2) if conn_s else None,
                    "idle_cpu_pct": next(
                        (s["cpu_pct"] for s in hold["servers"] if s["pid"] == pid), None
                    ),
                }
            )
    res = {
        "mode": "idle",
        "target": args.target,
        "tag": args.tag,
        "url_base": args.url_base,
        "sockets": args.idle,
        "connected": len(live),
        "open_at_end": open_at_end,
        "hold_s": hold["window_s"],
        "connect": connect_info,
        "errors": dict(run.errors),
        "frames_while_idle": run.n["idle_frames"],
        "presence_wrong_sockets": presence_wrong,
        "idle_window_s": IDLE_WINDOW,
        "idle_cpu_pct_windows": windows,  # all server processes, per window
        "servers": servers,
        "loadgen_cpu_pct": hold["loadgen_cpu_pct"],
        "system_cpu_pct": hold["system_cpu_pct"],
        "other_cpu_pct": hold["other_cpu_pct"],
        "foreign_cpu_pct": hold["foreign_cpu_pct"],
        "pass": open_at_end == args.idle and not presence_wrong,
    }
    return res


# -------------------------------------------------------------------------------- output
def summary(r):
    head = f"{r['mode']} {r['target']} {r.get('tag') or ''} -> {', '.join(r['url_base'])}"
    lines = [
        head,
        f"  connected {r['connected']} (open at end {r['open_at_end']}) in "
        f"{r['connect']['wall_s']} s; connect p50/p99 {r['connect']['p50_ms']}/"
        f"{r['connect']['p99_ms']} ms",
    ]
    if r.get("presence"):
        P = r["presence"]
        state = "complete" if P["complete"] else "INCOMPLETE"
        lines.append(f"  presence: {P['due']} online frames due, {state} {P['wait_s']} s after")
    if r["mode"] == "load":
        L = r["latency_ms"]
        lines += [
            f"  k={r['room_size']} offered {r['rate']}/s x {r['duration']} s: sent {r['sent']}, "
            f"acked {r['acked']}, expected {r['expected']}, delivered {r['delivered']} "
            f"({r['delivered_per_s']}/s); over all sends: lost {r['lost']}, dup "
            f"{r['duplicates']}, misrouted {r['misrouted']}; frame {r['frame_bytes']} B",
            f"  latency ms p50 {L['p50']} p95 {L['p95']} p99 {L['p99']} max {L['max']}; ack p99 "
            f"{r['ack_ms']['p99']}; send lag p99 {r['send_lag_ms']['p99']}; drain {r['drain_s']} s",
            "  by second [s, copies, p50, max]: "
            + " ".join(str(x) for x in r.get("latency_by_s", [])),
            f"  server cpu {r['server_cpu_s']} s = {r['server_cpu_ms_per_msg']} ms/msg; "
            + "; ".join(f"{s['comm']} {s['cpu_pct']}%" for s in r["servers"])
            + f"; loadgen {r['loadgen_cpu_pct']}%; machine {r['system_cpu_pct']}% (not ours "
            f"{r['other_cpu_pct']}%)",
        ]
        if r.get("sync_check"):
            lines.append(f"  sync check: {r['sync_check']}")
    else:
        for s in r["servers"]:
            lines.append(
                f"  {s['comm']}[{s['pid']}] rss {s['rss_kb_before']}->{s['rss_kb_after']}"
                f" kB ({s['rss_kb_per_socket']} kB/socket), idle cpu {s['idle_cpu_pct']}%"
            )
        lines.append(f"  loadgen {r['loadgen_cpu_pct']}%; not ours {r['other_cpu_pct']}%")
        lines.append(f"  servers' cpu % per {IDLE_WINDOW} s window: {r['idle_cpu_pct_windows']}")
    lines.append(f"  errors {r['errors'] or 'none'}; PASS={r['pass']}")
    return "\n".join(lines)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=("chat", "room"), required=True)
    p.add_argument("--plan", required=True, help="JSON plan from bench.population")
    p.add_argument("--url-base", nargs="+", required=True)
    p.add_argument("--cafile", help="CA file for wss:// (the nginx scenario)")
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--drain", type=float, default=5)
    p.add_argument(
        "--settle", type=float, default=1.0, help="s of quiet after connecting (and presence)"
    )
    p.add_argument(
        "--presence-timeout",
        type=float,
        default=120,
        help="chat: at most this many s for every socket to hear its online peers",
    )
    p.add_argument("--pad", type=int, default=100, help="room: pad characters")
    p.add_argument("--text-chars", type=int, default=100, help="chat: plaintext text length")
    p.add_argument("--idle", type=int, default=0, help="idle mode: number of sockets")
    p.add_argument(
        "--idle-ping",
        type=float,
        default=0,
        help="idle mode: each socket sends the browser's keep-alive frame every N s (0: never)",
    )
    p.add_argument("--connect-concurrency", type=int, default=20)
    p.add_argument("--connect-pause", type=float, default=0.0)
    p.add_argument("--open-timeout", type=float, default=60)
    p.add_argument("--server-pid", type=int, action="append", default=[])
    p.add_argument("--p99-limit-ms", type=float, default=100)
    p.add_argument("--room-prefix", default=None)
    p.add_argument("--run-tag", default=None, help="makes client_msg_ids unique per run")
    p.add_argument("--tag", default="")
    p.add_argument("--prep-workers", type=int, default=2)
    p.add_argument("--sync-check", action="store_true")
    p.add_argument("--ready-file", help="written when the load starts")
    p.add_argument("--senders", type=int, default=0, help="only the first N devices send")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    for base in a.url_base:
        if urlsplit(base).hostname not in LOOPBACK:
            p.error(f"{base}: only loopback targets are allowed")
    a.url_base = [b.rstrip("/") for b in a.url_base]
    stamp = f"{os.getpid()}t{int(time.time() * 1000) % 10**9}"
    a.room_prefix = a.room_prefix or f"b{stamp}r"
    a.run_tag = a.run_tag or stamp
    return a


def main(argv=None):
    args = parse_args(argv)
    fd = raise_fd_limit()
    with open(args.plan) as f:
        plan = json.load(f)
    coro = run_idle(args, plan) if args.idle else run_load(args, plan)
    budget = 900
    coro = asyncio.wait_for(coro, budget)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    res = uvloop.run(coro) if uvloop and not args.no_uvloop else asyncio.run(coro)
    res["fd_limit"] = fd
    res["uvloop"] = bool(uvloop and not args.no_uvloop)
    print(summary(res), file=sys.stderr)
    line = json.dumps(res, sort_keys=True)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
