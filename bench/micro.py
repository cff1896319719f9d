"""In-process cost of one message on the server's path, without sockets: frame parse and
schema, signature checks, `store_message` alone vs grouped (`store_messages`), frame
encode; SQL statements per message; channel-layer sends per message. CPU time is this
thread's (time.thread_time), so other load on the machine matters less than for the
socket runs (caches and frequency still do).

    .venv/bin/python -m bench.micro --k 2 --messages 400
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--messages", type=int, default=400)
    p.add_argument("--batch", type=int, default=20)
    args = p.parse_args()

    from bench.stacks import BENCH_SECRET_KEY, CACHE, schema_hash

    stem = CACHE / f"population-sqlite-n{args.devices}-k{args.k}-{schema_hash()}"
    if not stem.with_suffix(".sqlite3").exists():
        sys.exit(
            f"no cached population {stem}: run `bench.run sweep --scenario 2 --k {args.k}` once"
        )
    tmp = Path(tempfile.mkdtemp(prefix="bench-micro-"))
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
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from chatclient import protocol
    from keys.models import Device
    from messaging import actions, realtime
    from messaging.frames import parse_frame

    from . import envelopes

    n_dev = len(plan["devices"])
    per_dev = max(1, (4 * args.messages) // n_dev + 1)  # four passes below
    frames = envelopes.prepare(plan, per_dev, f"micro{time.time()}", workers=2)
    users = {u.pk: u for u in User.objects.all()}
    devices = {d.pk: d for d in Device.objects.all()}
    items = []  # (text, sender, device)
    for m in range(per_dev):
        for dev, lst in frames.items():
            d = plan["devices"][dev]
            items.append((lst[m][1], users[d["user_id"]], devices[d["device_id"]]))
    out = {
        "k": args.k,
        "messages": args.messages,
        "batch": args.batch,
        "frame_bytes": len(items[0][0]),
    }

    def cpu_us(fn, xs):
        t0 = time.thread_time()
        for x in xs:
            fn(x)
        return round(1e6 * (time.thread_time() - t0) / len(xs), 1)

    n = args.messages
    sample = items[:n]
    parsed = [parse_frame(t) for t, _, _ in sample]
    out["parse_frame_us"] = cpu_us(lambda t: parse_frame(t[0]), sample)
    dumped = [f.envelope.model_dump() for f in parsed]
    out["model_dump_us"] = cpu_us(lambda f: f.envelope.model_dump(), parsed)
    out["validate_envelope_us"] = cpu_us(protocol.validate_envelope, dumped)
    spkis = [bytes(dev.sig_spki) for _, _, dev in sample]
    keys = [actions.signing_key(s) for s in spkis]
    out["kid_from_key_us"] = cpu_us(lambda k: protocol.compute_kid(protocol.spki_of(k)), keys)
    out["kid_from_spki_bytes_us"] = cpu_us(protocol.compute_kid, spkis)

    def verify(i, **hot_path):
        f = parsed[i]
        assert protocol.verify_envelope_signature(
            dumped[i],
            conversation_id=f.conversation,
            sender_id=sample[i][1].pk,
            client_msg_id=f.client_msg_id,
            sig_public=keys[i],
            **hot_path,
        )

    out["verify_envelope_signature_us"] = cpu_us(verify, range(n))

    def verify_fast(i):  # what store_message passes since the cheaper-checks change
        verify(i, sig_spki=spkis[i], shape_checked=True)

    try:
        out["verify_spki_shape_checked_us"] = cpu_us(verify_fast, range(n))
    except TypeError:  # protocol.py before that change
        out["verify_spki_shape_checked_us"] = None

    try:  # the server's OpenSSL verifier (lane speed), where the tree has it
        from messaging import signatures

        def verify_openssl(i):
            f = parsed[i]
            assert signatures.verify_envelope(
                dumped[i],
                conversation_id=f.conversation,
                sender_id=sample[i][1].pk,
                client_msg_id=f.client_msg_id,
                sig_spki=spkis[i],
            )

        out["verify_openssl_us"] = cpu_us(verify_openssl, range(n))
    except ImportError:
        out["verify_openssl_us"] = None

    # store: one message per transaction (one commit each), then grouped
    def run_store(batch_items, grouped, batch=args.batch):
        reset_queries()  # the query log holds 9,000: a full one would count nothing
        t_wall, t_cpu = time.perf_counter(), time.thread_time()
        outcomes = []
        with CaptureQueriesContext(connection) as q:
            if grouped:
                for i in range(0, len(batch_items), batch):
                    chunk = [
                        (s, f.conversation, f.client_msg_id, f.envelope.model_dump(), d)
                        for f, s, d in batch_items[i : i + batch]
                    ]
                    outcomes += actions.store_messages(chunk)
            else:
                for f, s, d in batch_items:
                    outcomes.append(
                        actions.store_message(
                            s, f.conversation, f.client_msg_id, f.envelope.model_dump(), device=d
                        )
                    )
        assert all(isinstance(o, actions.SendOutcome) and o.created for o in outcomes), outcomes[:3]
        k = len(batch_items)
        return {
            "cpu_ms_per_msg": round(1e3 * (time.thread_time() - t_cpu) / k, 3),
            "wall_ms_per_msg": round(1e3 * (time.perf_counter() - t_wall) / k, 3),
            "sql_per_msg": round(len(q.captured_queries) / k, 2),
            "outcomes": outcomes,
        }

    second = [(parse_frame(t), s, d) for t, s, d in items[n : 2 * n]]
    third = [(parse_frame(t), s, d) for t, s, d in items[2 * n : 3 * n]]
    # The first send in each conversation accepts its message request (§6), a cost paid
    # once per conversation: store the first pass before measuring, so both figures are
    # steady state.
    out["store_first_pass"] = run_store(
        [(parse_frame(t), s, d) for t, s, d in sample], grouped=False
    )
    out["store_first_pass"].pop("outcomes")
    single = run_store(second, grouped=False)
    grouped = run_store(third, grouped=True)
    # What the server does below a few hundred sends a second: `store_messages` with one.
    fourth = [(parse_frame(t), s, d) for t, s, d in items[3 * n : 4 * n]]
    alone = run_store(fourth, grouped=True, batch=1)
    alone.pop("outcomes")
    out["store_batch_of_one"] = alone
    outcome = single.pop("outcomes")[0]
    grouped.pop("outcomes")
    out["store_single"] = single
    out["store_grouped"] = grouped
    frame = outcome.frame()
    out["encode_frame_us"] = cpu_us(lambda _: realtime.encode(frame), range(200))
    out["group_sends_per_msg"] = len(set(outcome.recipients))
    out["json_encodes_per_fanout"] = 1
    print(json.dumps(out))
    print("\n".join(f"  {k}: {v}" for k, v in out.items()), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def fanout_main(k: int = 20, messages: int = 200) -> dict:
    """Fan-out of one frame to k users' groups on a real Redis: channels_redis group_send
    per group (before) vs messaging.realtime's batched send (after); Redis commands, CPU
    and wall time per message, and that every channel got every frame."""
    import asyncio

    from scripts.devstack import RedisServer

    with RedisServer() as redis:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="chatsite.settings", REDIS_URL=redis.url, LOG_LEVEL="WARNING"
        )
        import django

        django.setup()
        from channels.layers import get_channel_layer

        from messaging import realtime

        def commands():
            return redis_pipeline_info(redis.port)

        async def run():
            layer = get_channel_layer()
            channels = []
            for uid in range(1, k + 1):
                ch = await layer.new_channel()
                await layer.group_add(realtime.user_group(uid), ch)
                channels.append(ch)
            text = "x" * 9000
            event = {"type": "chat.frame", "text": text}
            out = {}
            for name, send in (
                (
                    "group_send_per_group",
                    lambda: asyncio.gather(
                        *(layer.group_send(realtime.user_group(u), event) for u in range(1, k + 1))
                    ),
                ),
                ("batched", lambda: realtime.send_to_users(range(1, k + 1), text)),
            ):
                c0, t0, w0 = commands(), time.thread_time(), time.perf_counter()
                for _ in range(messages):
                    await send()
                    for ch in channels:  # drain, as the consumers would
                        await layer.receive(ch)
                c1 = commands()
                out[name] = {
                    "redis_commands_per_msg": round((c1 - c0) / messages, 1),
                    "cpu_ms_per_msg_incl_receive": round(
                        1e3 * (time.thread_time() - t0) / messages, 3
                    ),
                    "wall_ms_per_msg_incl_receive": round(
                        1e3 * (time.perf_counter() - w0) / messages, 3
                    ),
                }
            return out

        return asyncio.run(run())


def redis_pipeline_info(port: int) -> int:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        data = b""
        while b"total_commands_processed" not in data or not data.endswith(b"\r\n"):
            data += s.recv(65536)
            if b"\r\n\r\n" in data[-8:] or len(data) > 1 << 16:
                break
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    raise RuntimeError("no total_commands_processed in INFO")


if __name__ == "__main__":
    if "--fanout" in sys.argv:
        print(json.dumps(fanout_main()))
    else:
        main()
