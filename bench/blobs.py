#!/usr/bin/env python
"""Server CPU per MiB of encrypted attachments: upload and download 50 MiB blobs to one
real worker (embedded defaults: SQLite, filesystem storage, the app streaming downloads
itself) and read the worker's CPU time (utime + stime) from /proc before and after.

    .venv/bin/python -m bench.blobs                  # chatsite.serve (the unit's server)
    .venv/bin/python -m bench.blobs --server daphne  # stock daphne, for comparison
    .venv/bin/python -m bench.blobs --rounds 5 --mib 50

Prints MiB/s (wall time of the request, client on the same machine) and CPU ms per MiB
for each direction, and the worker's peak resident size growth (VmHWM, reset before).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time
from pathlib import Path

from chatclient.attachments import blob_size
from scripts.devstack import DaphneServer, DjangoStack

MiB = 2**20
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


class Client:
    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method, path, body=None, headers=None, sink=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"Origin": f"http://127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        if sink:
            size = 0
            while chunk := response.read(MiB):
                size += len(chunk)
            data = size
        else:
            data = response.read()
        conn.close()
        for line in response.headers.get_all("Set-Cookie") or []:
            name, _, value = line.split(";")[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return response.status, data


def run(server: str, rounds: int, mib: int) -> dict:
    stack = DjangoStack(1, env={"BLOB_UPLOAD_RATE": "1000/h", "LOG_LEVEL": "WARNING"})
    stack.start()
    try:
        if server == "daphne":  # the same app under stock daphne
            stack.servers[0].stop()
            stack.servers[0] = DaphneServer(stack.env, stack.dir, module="daphne").start()
        worker = stack.servers[0]
        client = Client(worker.port)
        client.request("GET", "/api/session/")
        body = json.dumps({"username": "bench", "password": "correct horse battery staple"})
        status, _ = client.request(
            "POST", "/api/users/", body, {"Content-Type": "application/json"}
        )
        assert status == 201
        size = blob_size(mib * MiB)
        blob = os.urandom(size)
        octets = {"Content-Type": "application/octet-stream"}
        Path(f"/proc/{worker.pid}/clear_refs").write_text("5")  # forget Argon2's peak
        hwm0 = peak_kib(worker.pid)
        up, down = [], []
        for _ in range(rounds):
            cpu, wall = cpu_seconds(worker.pid), time.perf_counter()
            status, answer = client.request("POST", "/api/blobs/", blob, octets)
            wall, cpu = time.perf_counter() - wall, cpu_seconds(worker.pid) - cpu
            assert status == 201, answer
            up.append((wall, cpu))
            blob_id = json.loads(answer)["blob"]["id"]
            cpu, wall = cpu_seconds(worker.pid), time.perf_counter()
            status, got = client.request("GET", f"/api/blobs/{blob_id}/", sink=True)
            wall, cpu = time.perf_counter() - wall, cpu_seconds(worker.pid) - cpu
            assert status == 200 and got == size
            down.append((wall, cpu))
        mibs = size / MiB
        return {
            "server": server,
            "blob_mib": round(mibs, 2),
            "rounds": rounds,
            "upload_mib_s": round(mibs / statistics.median(w for w, _ in up), 1),
            "upload_cpu_ms_per_mib": round(1000 * statistics.median(c for _, c in up) / mibs, 2),
            "download_mib_s": round(mibs / statistics.median(w for w, _ in down), 1),
            "download_cpu_ms_per_mib": round(
                1000 * statistics.median(c for _, c in down) / mibs, 2
            ),
            "peak_rss_growth_mib": round((peak_kib(worker.pid) - hwm0) / 1024, 1),
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["chatsite.serve", "daphne"], default="chatsite.serve")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=50)
    args = parser.parse_args()
    result = run(args.server, args.rounds, args.mib)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
