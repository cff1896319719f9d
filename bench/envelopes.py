"""Send frames prepared before a run: real PROTOCOL §2 (v2) envelopes, sealed and signed.

For each (sender device, conversation) the first envelope is made by
`chatclient.protocol.seal_envelope` itself (fresh content key K wrapped with RSA-OAEP for
every member device). Later envelopes of the same sender reuse K and its wrapped keys
(a sender may; the server cannot tell) with a fresh IV, a fresh AES-256-GCM ciphertext
under the message's own AAD and a fresh RSA-PSS signature over S, made with the same
protocol helpers; signing uses `cryptography` (OpenSSL), ~3x faster than pycryptodome
for the same PSS-SHA256/salt-32 signature. One envelope per sender is opened again with
`protocol.open_envelope` as a recipient would, as a self-check.

Each device's counter `n` in its conversation starts at `first_n` (by default the run's
start in seconds x 100,000, so runs against the same database keep rising) and goes up
by one per message, in the order the load generator sends them; `head` is the
conversation's roster head from the plan ("" for a direct one).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor

from Crypto.Cipher import AES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from chatclient import protocol

from . import keys as keycache

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def client_msg_id(run_tag: str, dev: int, m: int) -> str:
    """A lowercase UUID4-shaped id, deterministic per (run, device, n)."""
    h = bytearray(hashlib.sha256(f"{run_tag}|{dev}|{m}".encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def _text(m: int, chars: int) -> dict:
    body = f"bench message {m} "
    return protocol.text_message((body + "x" * chars)[:chars])


def _seal_sender(job):
    (
        dev,
        key_index,
        member_key_indexes,
        conv_id,
        head,
        sender_id,
        run_tag,
        count,
        chars,
        check_index,
        first_n,
    ) = job
    keycache.pairs(max([key_index, *member_key_indexes]) + 1)
    sender = keycache.device_keys(key_index)
    members = [keycache.device_keys(i) for i in member_key_indexes]
    recipients = {k.enc_kid: k.enc_public for k in members}
    sig_key = keycache.signing_key(key_index)
    content_key = protocol.get_random_bytes(protocol.CONTENT_KEY_BYTES)
    kc = protocol.b64encode(protocol.key_commitment(content_key))
    sig_kid = sender.sig_kid
    frames, wrapped = [], None
    for m in range(count):
        cmid = client_msg_id(run_tag, dev, m)
        n = first_n + m
        if m == 0:
            env = protocol.seal_envelope(
                _text(m, chars),
                conversation_id=conv_id,
                sender_id=sender_id,
                client_msg_id=cmid,
                n=n,
                head=head,
                sender_keys=sender,
                recipient_keys=recipients,
                content_key=content_key,
            )
            wrapped = env["keys"]
        else:
            aad = protocol.message_aad(conv_id, sender_id, cmid, sig_kid, n, head)
            iv = protocol.get_random_bytes(protocol.IV_BYTES)
            cipher = AES.new(content_key, AES.MODE_GCM, nonce=iv, mac_len=protocol.TAG_BYTES)
            cipher.update(aad.encode())
            body, tag = cipher.encrypt_and_digest(protocol.encode_plaintext(_text(m, chars)))
            iv_b64, ct_b64 = protocol.b64encode(iv), protocol.b64encode(body + tag)
            sig = sig_key.sign(
                protocol.signed_string(aad, iv_b64, ct_b64, kc), PSS, hashes.SHA256()
            )
            env = {
                "v": 2,
                "n": n,
                "head": head,
                "iv": iv_b64,
                "ct": ct_b64,
                "kc": kc,
                "keys": wrapped,
                "sig_kid": sig_kid,
                "sig": protocol.b64encode(sig),
            }
        if m == min(1, count - 1):  # self-check: a recipient opens it
            opened = protocol.open_envelope(
                env,
                conversation_id=conv_id,
                sender_id=sender_id,
                client_msg_id=cmid,
                device_keys=members[check_index],
                sig_public=sender.sig_public,
            )
            assert opened == _text(m, chars), "self-check failed"
        frame = {"type": "send", "conversation": conv_id, "client_msg_id": cmid, "envelope": env}
        frames.append((cmid, json.dumps(frame, separators=(",", ":"), ensure_ascii=False)))
    return dev, frames


def prepare(
    plan: dict,
    per_device: int,
    run_tag: str,
    *,
    text_chars: int = 100,
    workers: int = 2,
    only=None,
    first_n: int | None = None,
) -> dict[int, list[tuple[str, str]]]:
    """{device index: [(client_msg_id, send frame text), ...]} for every device, to be
    sent in list order (their `n` rise from `first_n`)."""
    devices = plan["devices"]
    if first_n is None:
        first_n = int(time.time()) * 100_000
    jobs = []
    for conv in plan["conversations"]:
        members = conv["members"]
        for pos, dev in enumerate(members):
            if only is not None and dev not in only:
                continue
            jobs.append(
                (
                    dev,
                    devices[dev]["key_index"],
                    [devices[m]["key_index"] for m in members],
                    conv["id"],
                    conv.get("head", ""),
                    devices[dev]["user_id"],
                    run_tag,
                    per_device,
                    text_chars,
                    (pos + 1) % len(members),
                    first_n,
                )
            )
    keycache.pairs(max(d["key_index"] for d in devices) + 1)
    if workers <= 1:
        return dict(map(_seal_sender, jobs))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_seal_sender, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
