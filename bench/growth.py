"""Cost as the work grows: 1,000,000 messages in PostgreSQL (100 conversations x 10,000).

    .venv/bin/python -m bench.growth                                 # ~10 min on 2 cores
    .venv/bin/python -m bench.growth --conversations 10 --per 1000   # a quick look

One throwaway PostgreSQL cluster (`scripts.devstack`, fsync off) holds two
databases migrated alike: `empty` and `full`. Each has the measured pair, alice and bob
(real 2048-bit keys from bench/.cache, one device each, one direct conversation). `full`
is bulk-loaded with COPY, not through the API: the pair's conversation and 99 others get
`--per` messages each, envelopes of realistic sizes (random ciphertext of 100-1,500 bytes,
two wrapped keys, a signature: 1.1-3.1 kB of JSON, as the browser's), seq and n as the
server would have stored them. Then, in fresh processes so neither database warms the
other's caches:

* send: `actions.store_messages` in batches of `--batch` (group commit, as the socket
  does), alice to bob, envelopes sealed by `chatclient.protocol`; thread CPU and wall time
  per message and SQL statements per message. Empty and full alternate, `--rounds`
  times each, so the machine's load hits both alike.
* history: `GET /api/conversations/<id>/messages/?before_seq=S&limit=100` through the
  whole Django stack (session, view, JSON), S random; p50/p99 of the wall time.
* sync: a socket that missed 10,000 messages (cursor 0) sends `sync` and reads pages of
  `SYNC_BATCH_LIMIT` until `has_more` is false, through the real consumer
  (`WebsocketCommunicator`, in-memory layer); wall and CPU for the whole catch-up.

Each measurement is a JSON line in bench/results/runs.jsonl (`"mode": "growth"`), which
`bench/plots.py` draws as cost against database size.

`--compare TREE [TREE ...]` loads `full` once and then measures only history and sync,
with each TREE's code and then this one's in turn (fresh processes, `--rounds` times), so
before/after figures share the database and the machine's load; `--profile DIR` then
records py-spy raw stacks of the first and the last tree (`history-A.txt`, ...).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PY = sys.executable
ALICE, BOB = "growth-alice", "growth-bob"


# ------------------------------------------------------------------------ in a database
def _django(db_url: str) -> None:
    from bench.stacks import BENCH_SECRET_KEY

    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DATABASE_URL=db_url,
        DJANGO_SECRET_KEY=BENCH_SECRET_KEY,
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def _device(user, index: int):
    from chatclient import protocol
    from keys.models import Device

    from . import keys

    dk = keys.device_keys(index)
    return Device.objects.create(
        user=user,
        name="bench",
        enc_spki=dk.enc_spki,
        sig_spki=dk.sig_spki,
        enc_kid=dk.enc_kid,
        sig_kid=dk.sig_kid,
        proof=protocol.b64encode(b"bench"),
    )


def setup(db_url: str) -> dict:
    """Migrate; alice and bob with real device keys and their direct conversation."""
    _django(db_url)
    from django.core.management import call_command

    from accounts.models import User
    from messaging.models import Conversation, Membership

    call_command("migrate", verbosity=0)
    alice = User.objects.create_user(ALICE)
    bob = User.objects.create_user(BOB)
    _device(alice, 0), _device(bob, 1)
    conversation = Conversation.objects.create(
        kind=Conversation.DIRECT, direct_key=f"{alice.pk}:{bob.pk}"
    )
    Membership.objects.bulk_create(
        [Membership(conversation=conversation, user=u) for u in (alice, bob)]
    )
    return {"conversation": conversation.pk}


def _envelope_pool(size: int = 512) -> list[tuple[str, int]]:
    """(envelope JSON with an `@N@` slot for n, ct length) of realistic sizes."""
    rng = random.Random(7)

    def b64(n: int) -> str:
        return base64.b64encode(rng.randbytes(n)).decode()

    pool = []
    for _ in range(size):
        ct = b64(rng.randint(100, 1500) + 16)
        envelope = {
            "v": 2,
            "n": "@N@",
            "head": "",
            "iv": b64(12),
            "ct": ct,
            "kc": b64(32),
            "keys": {rng.randbytes(32).hex(): b64(256), rng.randbytes(32).hex(): b64(256)},
            "sig_kid": rng.randbytes(32).hex(),
            "sig": b64(256),
        }
        pool.append((json.dumps(envelope, separators=(",", ":")).replace('"@N@"', "@N@"), len(ct)))
    return pool


def load(db_url: str, conversations: int, per: int, start: int) -> dict:
    """Bulk-load conversations `start`..`conversations-1` with `per` messages each (the
    first is alice and bob's), by COPY; returns rows and seconds."""
    _django(db_url)
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from keys.models import Device
    from messaging.models import Conversation, Membership

    alice, bob = User.objects.get(username=ALICE), User.objects.get(username=BOB)
    pairs = []
    for c in range(max(start, 1), conversations):  # other pairs: users, devices, conversation
        a = User.objects.create_user(f"growth-{c}-a")
        b = User.objects.create_user(f"growth-{c}-b")
        devs = [
            Device.objects.create(
                user=u,
                name="bench",
                enc_spki=b"",
                sig_spki=b"",
                enc_kid=uuid.uuid4().hex * 2,
                sig_kid=uuid.uuid4().hex * 2,
            )  # fmt: skip
            for u in (a, b)
        ]
        conv = Conversation.objects.create(kind=Conversation.DIRECT, direct_key=f"{a.pk}:{b.pk}")
        Membership.objects.bulk_create([Membership(conversation=conv, user=u) for u in (a, b)])
        pairs.append((conv.pk, [(a.pk, devs[0].pk), (b.pk, devs[1].pk)]))
    if start == 0:
        own = Conversation.objects.get(direct_key=f"{alice.pk}:{bob.pk}")
        devs = {d.user_id: d.pk for d in Device.objects.filter(user__in=[alice, bob])}
        pairs.insert(0, (own.pk, [(alice.pk, devs[alice.pk]), (bob.pk, devs[bob.pk])]))
    pool = _envelope_pool()
    t0 = time.perf_counter()
    created = timezone.now().isoformat()
    columns = "conversation_id, seq, sender_id, sender_device_id, client_msg_id, created,"
    columns += " envelope, size, n, blob_ids, deleted"
    raw = connection.cursor().connection  # psycopg's connection: COPY
    rows = 0
    with raw.cursor() as cursor:
        for conv_id, members in pairs:
            buf = io.StringIO()
            for seq in range(1, per + 1):
                user_id, device_id = members[seq % 2]
                n = (seq + 1) // 2
                envelope, size = pool[(seq * 31 + conv_id) % len(pool)]
                envelope = envelope.replace("@N@", str(n))
                buf.write(
                    f"{conv_id}\t{seq}\t{user_id}\t{device_id}\t{uuid.uuid4()}\t{created}\t"
                    f"{envelope}\t{size}\t{n}\t[]\tf\n"
                )
            with cursor.copy(f"COPY messaging_message ({columns}) FROM STDIN") as copy:
                copy.write(buf.getvalue())
            cursor.execute(
                "UPDATE messaging_conversation SET last_seq = %s WHERE id = %s", [per, conv_id]
            )
            rows += per
        cursor.execute("ANALYZE")
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_database_size(current_database()) FROM messaging_message"
        )
        total, db_bytes = cursor.fetchone()
    return {
        "rows_loaded": rows,
        "load_s": round(time.perf_counter() - t0, 1),
        "messages": total,
        "db_mb": round(db_bytes / 2**20),
    }


def measure(db_url: str, what: str, sends: int, batch: int, history: int) -> dict:
    """One kind of measurement in this process (see the module's docstring)."""
    _django(db_url)
    from django.db import connection

    from accounts.models import User
    from messaging.models import Conversation, Message

    alice, bob = User.objects.get(username=ALICE), User.objects.get(username=BOB)
    conv = Conversation.objects.get(direct_key=f"{alice.pk}:{bob.pk}")
    out = {"messages_in_db": Message.objects.count(), "conversation_messages": conv.last_seq}
    if what == "send":
        out.update(_measure_send(alice, bob, conv, sends, batch))
    elif what == "history":
        out.update(_measure_history(alice, conv, history))
    elif what == "sync":
        out.update(_measure_sync(alice, conv))
    connection.close()
    return out


def _measure_send(alice, bob, conv, sends: int, batch: int) -> dict:
    from django.db import connection
    from django.db.models import Max
    from django.test.utils import CaptureQueriesContext

    from chatclient import protocol
    from keys.models import Device
    from messaging import actions
    from messaging.models import Message

    from . import keys

    device = Device.objects.get(user=alice)
    n0 = Message.objects.filter(conversation=conv, sender_device=device).aggregate(m=Max("n"))["m"]
    recipients = {
        keys.device_keys(i).enc_kid: keys.device_keys(i).enc_private.public_key() for i in (0, 1)
    }
    items = []
    for i in range(sends):
        msg_id = protocol.new_client_msg_id()
        envelope = protocol.seal_envelope(
            protocol.text_message(f"growth {i}"),
            conversation_id=conv.pk,
            sender_id=alice.pk,
            client_msg_id=msg_id,
            n=(n0 or 0) + 1 + i,
            head="",
            sender_keys=keys.device_keys(0),
            recipient_keys=recipients,
        )
        items.append((alice, conv.pk, msg_id, envelope, device))
    actions.store_messages(items[:batch])  # warm: connection, caches
    items = items[batch:]
    pg0 = _backend_cpu_s()
    t_cpu, t_wall = time.thread_time(), time.perf_counter()
    with CaptureQueriesContext(connection) as q:
        for i in range(0, len(items), batch):
            results = actions.store_messages(items[i : i + batch])
            assert all(isinstance(r, actions.SendOutcome) and r.created for r in results), results
    k = len(items)
    cpu, wall = time.thread_time() - t_cpu, time.perf_counter() - t_wall
    return {
        "sends": k,
        "batch": batch,
        "send_cpu_ms_per_msg": round(1e3 * cpu / k, 3),
        "send_pg_cpu_ms_per_msg": round(1e3 * (_backend_cpu_s() - pg0) / k, 3),
        "send_wall_ms_per_msg": round(1e3 * wall / k, 3),
        "sql_per_msg": round(len(q.captured_queries) / k, 2),
    }


def _measure_history(alice, conv, requests: int) -> dict:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(alice)
    rng = random.Random(11)
    last = conv.last_seq
    path = f"/api/conversations/{conv.pk}/messages/"
    client.get(path + "?limit=100")  # warm
    times, cpus = [], []
    pg0 = _backend_cpu_s()
    for i in range(requests):
        query = "?limit=100" if i % 10 == 0 else f"?limit=100&before_seq={rng.randint(2, last + 1)}"
        t0, c0 = time.perf_counter(), time.thread_time()
        response = client.get(path + query)
        times.append(1e3 * (time.perf_counter() - t0))
        cpus.append(1e3 * (time.thread_time() - c0))
        assert response.status_code == 200, response.content[:200]
    pg = 1e3 * (_backend_cpu_s() - pg0) / requests
    times.sort(), cpus.sort()

    def p99(xs):
        return round(xs[int(0.99 * (len(xs) - 1))], 2)

    return {
        "history_requests": requests,
        "history_p50_ms": round(statistics.median(times), 2),
        "history_p99_ms": p99(times),
        "history_cpu_p50_ms": round(statistics.median(cpus), 2),
        "history_cpu_p99_ms": p99(cpus),
        "history_pg_cpu_ms_mean": round(pg, 2),
    }


def _measure_sync(alice, conv) -> dict:
    import asyncio

    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.test import Client

    from chatsite.asgi import application
    from keys.models import Device

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    device = Device.objects.get(user=alice)

    async def run():
        ws = WebsocketCommunicator(
            application,
            f"/ws/chat/?device={device.pk}",
            headers=[
                (b"origin", b"http://127.0.0.1"),
                (b"cookie", cookie),
                (b"host", b"127.0.0.1"),
            ],
        )
        assert (await ws.connect(timeout=30))[0]
        cursor, got, pages, more = 0, 0, 0, True
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        while more:
            sync = {"type": "sync", "cursors": {str(conv.pk): cursor}}
            await ws.send_to(text_data=json.dumps(sync))
            while True:
                frame = json.loads(await ws.receive_from(timeout=60))
                if frame["type"] == "message":
                    got += 1
                elif frame["type"] == "synced":
                    cursor = frame["cursors"][str(conv.pk)]
                    more = frame["has_more"][str(conv.pk)]
                    pages += 1
                    break
        wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
        await ws.disconnect()
        return got, pages, wall, cpu

    pg0 = _backend_cpu_s()
    got, pages, wall, cpu = asyncio.run(run())
    pg_cpu = _backend_cpu_s() - pg0
    assert got == conv.last_seq, (got, conv.last_seq)
    return {
        "sync_messages": got,
        "sync_pages": pages,
        "sync_page_size": settings.SYNC_BATCH_LIMIT,
        "sync_wall_s": round(wall, 3),
        "sync_cpu_s_incl_client": round(cpu, 3),
        "sync_pg_cpu_s": round(pg_cpu, 3),
    }


def _backend_cpu_s() -> float:
    """CPU seconds so far of the whole PostgreSQL cluster (the postmaster's process tree,
    so every backend, the one of the consumer's database thread included)."""
    from django.db import connection

    from . import sysstat

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return sysstat.snapshot([postmaster])["procs"][postmaster]["cpu_s"]


# ------------------------------------------------------------------------------ driver
def _child(*argv, tree: Path = REPO, profile: Path | None = None) -> dict:
    """`bench.growth <argv>` in a fresh process, importing the code of `tree` (this one,
    or an older checkout for `--compare`); under py-spy (raw stacks to `profile`) if set."""
    cmd = [PY, "-m", "bench.growth", *argv]
    if profile is not None:
        cmd = [
            str(Path(PY).parent / "py-spy"),
            "record",
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            str(profile),
            "--",
            *cmd,
        ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"bench.growth {argv[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads([x for x in out.stdout.splitlines() if x.startswith("{")][-1])


def _load_avg() -> str:
    return Path("/proc/loadavg").read_text().split()[:3]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--per", type=int, default=10000)
    p.add_argument("--steps", type=int, nargs="*", default=[10], help="measure after N convs too")
    p.add_argument("--sends", type=int, default=220)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--history", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--label", default="growth")
    p.add_argument("--out", default=str(RESULTS / "runs.jsonl"))
    p.add_argument(
        "--compare",
        metavar="TREE",
        nargs="+",
        help="after loading, history and sync only: each TREE's code and then this one's,"
        " in turn, --rounds times, on the same database",
    )
    p.add_argument("--profile", metavar="DIR", help="then py-spy raw stacks of history and sync")
    args = p.parse_args()

    import psycopg

    from bench.scenarios import git_rev
    from scripts.devstack import PostgresServer

    pg = PostgresServer(dbname="empty").start()
    rev = git_rev()

    def record(row: dict) -> None:
        row = {"mode": "growth", "label": args.label, "git": rev, "load": _load_avg(), **row}
        print(json.dumps(row), flush=True)
        RESULTS.mkdir(exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")

    try:
        with psycopg.connect(pg.url_for("empty"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE full_db")
        empty, full = pg.url_for("empty"), pg.url_for("full_db")
        for url in (empty, full):
            _child("_setup", url)

        def sends(url: str, db: str) -> None:
            m = _child("_measure", url, "send", str(args.sends), str(args.batch), "0")
            record({"what": "send", "db": db, **m})

        if args.compare:
            compare(args, full, record)
            return
        sends(empty, "empty")
        start = 0
        for stop in [s for s in args.steps if s < args.conversations] + [args.conversations]:
            loaded = _child("_load", full, str(stop), str(args.per), str(start))
            record({"what": "load", "db": "full", **loaded})
            start = stop
            sends(full, "full")
            for what in ("history", "sync"):
                m = _child("_measure", full, what, "0", "0", str(args.history))
                record({"what": what, "db": "full", **m})
        for _ in range(args.rounds):  # empty and full alternated, same load on both
            sends(empty, "empty")
            sends(full, "full")
    finally:
        pg.stop()


def compare(args, full: str, record) -> None:
    """Load `full` at once; then history and sync of each tree in turn (the trees of
    `--compare` as A, B, ..., this one last), round after round, so the machine's load
    hits all alike; then py-spy profiles if asked."""
    loaded = _child("_load", full, str(args.conversations), str(args.per), "0")
    record({"what": "load", "db": "full", **loaded})
    paths = [Path(tree).resolve() for tree in args.compare] + [REPO]
    trees = {chr(ord("A") + i): path for i, path in enumerate(paths)}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            for what in ("history", "sync"):
                m = _child("_measure", full, what, "0", "0", str(args.history), tree=tree)
                record({"what": what, "db": "full", "tree": name, "code": str(tree), **m})
    if args.profile:
        out = Path(args.profile)
        out.mkdir(parents=True, exist_ok=True)
        first, last = next(iter(trees)), list(trees)[-1]
        for name, tree in ((first, trees[first]), (last, trees[last])):
            for what in ("history", "sync"):
                prof = out / f"{what}-{name}.txt"
                m = _child(
                    "_measure", full, what, "0", "0", str(args.history), tree=tree, profile=prof
                )
                record({"what": what, "db": "full", "tree": name, "profile": str(prof), **m})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_setup":
        print(json.dumps(setup(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_load":
        print(json.dumps(load(sys.argv[2], *map(int, sys.argv[3:6]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "_measure":
        db, what, sends_, batch_, history_ = sys.argv[2:7]
        print(json.dumps(measure(db, what, int(sends_), int(batch_), int(history_))))
    else:
        main()
