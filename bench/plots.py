"""Plots for docs/performance.md, drawn from bench/results/runs.jsonl (matplotlib, PNG).

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.plots                    # docs/img/*.png
    .venv/bin/python -m bench.plots --labels final2 final3 --growth-label growth-s22

* `rate-s2-k2.png`: delivered messages/s and p99 latency against the offered rate, one
  daphne + Redis, 1:1 (scenario 2), the chat and the minimal Channels room, from the runs
  of `--labels` that were not contaminated by other load; a run that lost copies is an x.
* `rate-s2-k20.png`: the same for 20-member conversations.
* `growth.png`: cost against the number of messages in PostgreSQL (`bench.growth`): CPU
  per stored message (Django + PostgreSQL), history page CPU p50/p99, and the CPU of a
  sync that catches up a whole conversation, per 10,000 messages.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / "results" / "runs.jsonl"
OUT = HERE.parent / "docs" / "img"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _label(r: dict) -> str:
    return r.get("sweep") or r.get("label") or ""


def _variant(r: dict) -> str:
    """ "before" or "after" for a run tagged so (`--tag=-before`: A/B of two trees), else ""."""
    tag = r.get("tag") or ""
    return next((v for v in ("before", "after") if tag.endswith(f"-{v}")), "")


def rate_plot(rows: list[dict], k: int, labels: list[str], out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_p) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {
        ("chat", ""): ("tab:blue", "o"),
        ("chat", "before"): ("tab:gray", "^"),
        ("chat", "after"): ("tab:blue", "o"),
        ("room", ""): ("tab:orange", "s"),
    }
    for target, variant in styles:
        runs = [
            r
            for r in rows
            if r.get("mode") == "load"
            and r.get("scenario") == 2
            and r.get("room_size") == k
            and r.get("target") == target
            and (_variant(r) if target == "chat" else "") == variant  # one room, any tag
            and _label(r) in labels
            and not r.get("contaminated")
        ]
        by_rate = defaultdict(list)
        for r in runs:
            by_rate[r["rate"]].append(r)
        rates = sorted(by_rate)
        if not rates:
            continue
        color, marker = styles[target, variant]
        name = "chat (encrypted path)" if target == "chat" else "minimal Channels room"
        name += f", {variant}" if variant else ""
        best = [max(by_rate[x], key=lambda r: r["delivered_per_s"]) for x in rates]
        ax_t.plot(
            rates, [r["delivered_per_s"] for r in best], color=color, marker=marker, label=name
        )
        p99 = [
            statistics.median((r["latency_ms"]["p99"] or float("nan")) for r in by_rate[x])
            for x in rates
        ]
        ax_p.plot(rates, p99, color=color, marker=marker, label=name)
        for x in rates:  # every run, faint; a run that lost copies as an x
            for r in by_rate[x]:
                lost = r.get("lost", 0) > 0
                y = r["latency_ms"]["p99"]
                if y:
                    ax_p.scatter(
                        [x], [y], color=color, marker="x" if lost else ".", alpha=0.5, zorder=3
                    )
                if lost:
                    ax_t.scatter([x], [r["delivered_per_s"]], color=color, marker="x", zorder=3)
    top = max((ln.get_xdata().max() for ln in ax_t.get_lines()), default=1)
    ax_t.plot([0, top], [0, top * k], color="grey", lw=0.8, ls=":", label="all delivered")
    ax_t.set(
        xlabel="offered messages/s",
        ylabel="delivered copies/s",
        title=f"Throughput, one daphne + Redis, k={k}",
    )
    ax_p.axhline(100, color="grey", lw=0.8, ls="--", label="pass limit (p99 100 ms)")
    ax_p.set(
        xlabel="offered messages/s",
        ylabel="p99 latency, ms (log)",
        yscale="log",
        title="p99 send→receive (x: copies lost)",
    )
    for ax in (ax_t, ax_p):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"runs {', '.join(labels)} (uncontaminated)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def growth_plot(rows: list[dict], label: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    runs = [r for r in rows if r.get("mode") == "growth" and (not label or _label(r) == label)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))

    def xs(rs):
        return [max(1, r["messages_in_db"]) for r in rs]

    sends = sorted((r for r in runs if r["what"] == "send"), key=lambda r: r["messages_in_db"])
    ax = axes[0]
    ax.scatter(xs(sends), [r["send_cpu_ms_per_msg"] for r in sends], label="Django (store)")
    ax.scatter(
        xs(sends),
        [r.get("send_pg_cpu_ms_per_msg", 0) for r in sends],
        marker="s",
        label="PostgreSQL",
    )
    ax.set(
        xscale="log",
        xlabel="messages in the database (log)",
        ylabel="CPU ms per message",
        title="send (batches of 20)",
    )
    hist = sorted((r for r in runs if r["what"] == "history"), key=lambda r: r["messages_in_db"])
    ax = axes[1]
    ax.plot(xs(hist), [r["history_cpu_p50_ms"] for r in hist], marker="o", label="CPU p50")
    ax.plot(xs(hist), [r["history_cpu_p99_ms"] for r in hist], marker="o", label="CPU p99")
    ax.plot(
        xs(hist), [r["history_pg_cpu_ms_mean"] for r in hist], marker="s", label="PostgreSQL mean"
    )
    ax.axhline(20, color="grey", ls="--", lw=0.8, label="goal p99 20 ms")
    ax.set(
        xscale="log",
        xlabel="messages in the database (log)",
        ylabel="ms per page of 100",
        title="history page",
    )
    sync = sorted((r for r in runs if r["what"] == "sync"), key=lambda r: r["messages_in_db"])
    ax = axes[2]
    per10k = [1e4 / r["sync_messages"] for r in sync]
    ax.plot(
        xs(sync),
        [r["sync_cpu_s_incl_client"] * f for r, f in zip(sync, per10k, strict=True)],
        marker="o",
        label="Django + test client CPU",
    )
    ax.plot(
        xs(sync),
        [r["sync_pg_cpu_s"] * f for r, f in zip(sync, per10k, strict=True)],
        marker="s",
        label="PostgreSQL CPU",
    )
    ax.axhline(2, color="grey", ls="--", lw=0.8, label="goal 2 s")
    ax.set(
        xscale="log",
        xlabel="messages in the database (log)",
        ylabel="s per 10,000 messages",
        title="sync from cursor 0",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"cost against database size ({label or 'all growth runs'})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(RUNS))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--labels", nargs="+", default=["final2", "final3"])
    p.add_argument("--growth-label", default="growth-s22")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    rows = load(Path(args.runs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = [
        rate_plot(rows, 2, args.labels, out / "rate-s2-k2.png"),
        rate_plot(rows, 20, args.labels, out / "rate-s2-k20.png"),
    ]
    if any(r.get("mode") == "growth" for r in rows):
        made.append(growth_plot(rows, args.growth_label, out / "growth.png"))
    print("\n".join(str(m) for m in made))


if __name__ == "__main__":
    main()
