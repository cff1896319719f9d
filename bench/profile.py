"""Profile one daphne worker under load with py-spy and summarise the hot path.

    .venv/bin/python -m bench.run profile --scenario 2 --k 2 --rate 150 --seconds 10

py-spy samples the worker (all threads, --nonblocking, 200 Hz) while bench/loadgen.py
drives it; the collapsed stacks stay in bench/results/ (not committed) and this module
prints: samples per thread (event loop vs the database thread), the functions with the
most samples anywhere on the stack (inclusive) and at the top (self), and the share of
a few named parts of the message path.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

# Named parts of the path: (label, regex on a "function (file)" frame); first match wins
# for "self" attribution, any match counts for inclusive.
PARTS = [
    ("frame parse + schema (parse_frame)", r"^parse_frame "),
    ("envelope re-validation (validate_envelope)", r"^validate_envelope "),
    ("signing key kid (compute_kid/spki_of)", r"^(compute_kid|spki_of) "),
    ("PSS verify (pss_verify)", r"^pss_verify "),
    ("store_message (DB thread, all)", r"^store_message "),
    (
        "DB connect/close (close_old_connections, connect)",
        r"^(close_old_connections|connect|get_new_connection|close) \(.*django/db",
    ),
    ("SQL execute", r"^(execute|_execute|_execute_with_wrappers) \(.*django/db/backends"),
    ("message_dict / wire", r"^message_dict "),
    ("realtime.send_to_users (encode + group_send)", r"^send_to_users "),
    ("channel layer group_send", r"^group_send "),
    (
        "channel layer receive",
        r"^(receive|receive_single|_brpop_with_clean|receive_buffer_lpop|_do_keepalive) \(.*channels",
    ),
    ("msgpack (channels_redis serialize)", r"^(serialize|deserialize) \(.*channels_redis"),
    ("JSON encode (realtime.encode)", r"^encode \(.*messaging/realtime"),
    ("websocket send (daphne/autobahn)", r"^(sendMessage|handle_reply|sendFrame) "),
    ("websocket receive (autobahn onMessage)", r"^(onMessage|processData|_onMessage) "),
    ("asyncio/twisted loop overhead", r"^(_run_once|run_forever|_run|select|poll) "),
]


def parse(path):
    """[(thread, [frames root..leaf], count)] from py-spy --format raw (--threads)."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
            if frames and frames[0].startswith("process"):
                frames = frames[1:]
                thread = frames[0] if frames and frames[0].startswith("thread") else ""
            if thread:
                frames = frames[1:]
            out.append((thread, frames, int(count)))
    return out


def short(frame):
    # "name (path/to/file.py:123)" -> "name (file.py)" keeps it readable
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    name, path = m.groups()
    parts = path.split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def summarize(path, top=25):
    rows = parse(path)
    total = sum(c for _, _, c in rows)
    by_thread = Counter()
    for _t, frames, c in rows:
        kind = (
            "event loop (main)"
            if any("run_forever" in f or "reactor" in f.lower() for f in frames[:12])
            else "other threads"
        )
        by_thread[kind] += c
    incl, selfc = Counter(), Counter()
    parts_incl, parts_self = Counter(), Counter()
    for _, frames, c in rows:
        seen = set()
        for f in frames:
            s = short(f)
            if s not in seen:
                incl[s] += c
                seen.add(s)
        if frames:
            selfc[short(frames[-1])] += c
        hit = set()
        leaf_label = None
        for f in reversed(frames):
            for label, rx in PARTS:
                if re.search(rx, short(f)):
                    hit.add(label)
                    if leaf_label is None:
                        leaf_label = label
        for label in hit:
            parts_incl[label] += c
        parts_self[leaf_label or "(other)"] += c
    lines = [
        f"{total} samples; by thread: "
        + ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in by_thread.most_common())
    ]
    lines.append("\nnamed parts (inclusive % of all samples / innermost-part %):")
    for label, _ in PARTS:
        if parts_incl[label]:
            lines.append(
                f"  {100 * parts_incl[label] / total:5.1f}% / "
                f"{100 * parts_self[label] / total:5.1f}%  {label}"
            )
    lines.append(f"  ---- / {100 * parts_self['(other)'] / total:5.1f}%  (no named part)")
    lines.append(f"\ntop {top} inclusive:")
    for name, c in incl.most_common(top):
        lines.append(f"  {100 * c / total:5.1f}%  {name}")
    lines.append(f"\ntop {top} self:")
    for name, c in selfc.most_common(top):
        lines.append(f"  {100 * c / total:5.1f}%  {name}")
    return "\n".join(lines)


def by_group(path, patterns):
    """Samples under each regex (inclusive), for ad-hoc questions."""
    rows = parse(path)
    total = sum(c for _, _, c in rows)
    out = defaultdict(int)
    for _, frames, c in rows:
        for p in patterns:
            if any(re.search(p, f) for f in frames):
                out[p] += c
    return total, dict(out)


if __name__ == "__main__":
    import sys

    print(summarize(sys.argv[1]))
