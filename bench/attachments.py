"""Encrypt and decrypt throughput of the Python client's attachment crypto
(chatclient/attachments.py) on one file, as `send_file` and `download` do it: 1 MiB
pieces through FileEncryptor (hashing on the way), 256 KiB pieces through FileDecryptor;
plus raw AES-256-GCM on the same 64 KiB chunks for comparison. Wall and CPU time of this
thread; best of ``--runs``.

    .venv/bin/python -m bench.attachments --mib 50 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import time

from Crypto.Cipher import AES

from chatclient import attachments
from chatclient.protocol import b64encode

MIB = 2**20


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def measure(size: int, runs: int) -> dict:
    data = os.urandom(size)
    blob = bytearray()
    meta: dict = {}

    def encrypt() -> None:
        blob.clear()
        encryptor = attachments.FileEncryptor(size)
        for i in range(0, size, MIB):
            blob.extend(encryptor.update(data[i : i + MIB]))
        blob.extend(encryptor.finish())
        meta.update(
            key=b64encode(encryptor.key),
            prefix=b64encode(encryptor.prefix),
            size=size,
            sha256=encryptor.sha256,
        )

    def decrypt() -> None:
        decryptor = attachments.FileDecryptor(meta)
        view = memoryview(bytes(blob))
        for i in range(0, len(view), 256 * 1024):
            decryptor.update(view[i : i + 256 * 1024])
        decryptor.finish()

    def raw_gcm() -> None:
        key, nonce = os.urandom(32), os.urandom(12)
        view = memoryview(data)
        for i in range(0, size, attachments.FILE_CHUNK):
            AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(
                view[i : i + attachments.FILE_CHUNK]
            )

    results = {}
    for name, fn in (("encrypt", encrypt), ("decrypt", decrypt), ("raw_aes_gcm", raw_gcm)):
        best = min((timed(fn) for _ in range(runs)), key=lambda t: t[0])
        results[name] = {
            "seconds": round(best[0], 3),
            "cpu_seconds": round(best[1], 3),
            "mib_per_s": round(size / MIB / best[0], 1),
            "mib_per_cpu_s": round(size / MIB / max(best[1], 1e-9), 1),
        }
    return {"file_mib": size / MIB, "blob_bytes": len(blob), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(int(args.mib * MIB), args.runs), indent=2))


if __name__ == "__main__":
    main()
