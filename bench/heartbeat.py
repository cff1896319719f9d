"""The presence heartbeat's cost for N open sockets of one process (`refresh_worker`:
every row every HEARTBEAT_SECONDS), in-process, against the same rows refreshed a tenth at
a time (`id % 10`, the spreading that was tried and dropped: each slice scans them all).

    .venv/bin/python -m bench.heartbeat --rows 10000 [--database-url postgresql://...]

Rows are made on 200 devices of the cached scenario-2 population (SQLite unless
`--database-url`); CPU is this process's (`time.process_time`, SQLite works in-process),
wall the call's.
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--database-url")
    args = p.parse_args()

    from bench.population import CACHE_TAG
    from bench.stacks import BENCH_SECRET_KEY, CACHE, schema_hash

    tmp = Path(tempfile.mkdtemp(prefix="bench-heartbeat-"))
    url = args.database_url
    if not url:
        stem = CACHE / f"population-sqlite-n200-k2-{schema_hash()}{CACHE_TAG}"
        if not stem.with_suffix(".sqlite3").exists():
            sys.exit(f"no cached population {stem}")
        shutil.copy(stem.with_suffix(".sqlite3"), tmp / "db.sqlite3")
        url = f"sqlite:///{tmp / 'db.sqlite3'}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DATABASE_URL=url,
        DJANGO_SECRET_KEY=BENCH_SECRET_KEY,
        CHAT_VAR_DIR=str(tmp / "var"),
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from keys.models import Device
    from messaging import presence
    from messaging.models import Connection

    devices = list(Device.objects.values_list("pk", "user_id")[:200])
    Connection.objects.bulk_create(
        [
            Connection(
                channel_name=f"bench.heartbeat!{i}",
                user_id=devices[i % len(devices)][1],
                device_id=devices[i % len(devices)][0],
                worker=presence.WORKER_ID,
            )
            for i in range(args.rows)
        ],
        batch_size=1000,
    )

    def timed(fn):
        c, w = time.process_time(), time.perf_counter()
        fn()
        return 1e3 * (time.process_time() - c), 1e3 * (time.perf_counter() - w)

    from django.db.models.functions import Mod
    from django.utils import timezone

    def one_slice(part, parts):
        mine = Connection.objects.filter(worker=presence.WORKER_ID)
        mine.alias(part=Mod("id", parts)).filter(part=part).update(seen=timezone.now())

    whole, slices = [], []
    parts = 10
    for _ in range(args.repeat):  # alternated
        whole.append(timed(presence.refresh_worker))
        slices.append(timed(lambda: [one_slice(k, parts) for k in range(parts)]))
    best_whole = min(whole)
    best_round = min(slices)
    out = {
        "rows": args.rows,
        "database": url.split(":", 1)[0],
        "all_rows_cpu_ms": round(best_whole[0], 1),
        "all_rows_wall_ms": round(best_whole[1], 1),
        "one_slice_cpu_ms": round(best_round[0] / parts, 1),
        "one_slice_wall_ms": round(best_round[1] / parts, 1),
        "all_rows_pct_of_core_in_a_20s_window": round(100 * best_whole[0] / 1e3 / 20, 2),
        "mean_pct_of_core": round(100 * best_whole[0] / 1e3 / presence.HEARTBEAT_SECONDS, 2),
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(out))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
