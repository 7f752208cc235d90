"""Decision latency of the coordinator's pure scheduling core on a site-sized snapshot.

Run: .venv/bin/python bench/scheduler.py [--seed 7] [--steady 20000] [--idle 10000] [--explain 1000]

The scenario of issue 3: 200 farms x 32 slots (some farms lack os=linux), 5,000 queues over 100 bases,
each base with two windows in America/Sao_Paulo (half of them crossing midnight), IMPORTACAO queues
(batch 500, priority 3–6) and COBSINC queues (batch 1, priority 8), 20% of queues requiring os=linux,
200–1000 pending messages per queue keyed by CPF, some of them in back-off. The clock starts on a
Wednesday at 23:30 site time, so the windows crossing midnight are in force, and moves 1 ms per decision.

Phases, timed per decision with perf_counter_ns (a decision includes apply_lease when it leases):
fill          every slot of every farm, from empty;
complete      finish a random running task: replace its QueueState, snapshot.with_queue;
steady        right after each completion, decide the freed slot;
idle          every base at its limit (topped up untimed after steady): what a free slot hears;
explain/room  why a random queue is not served, all farms' labels, on the snapshot half-way through fill;
explain/full  the same once every base is at its limit.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from xtreaming.coordinator.scheduler import FreeSlot, Idle, Lease, apply_lease, explain, schedule
from xtreaming.coordinator.snapshot import BaseState, Labels, PendingMessage, QueueState, Snapshot, labels_of
from xtreaming.coordinator.windows import Window, limit_in_force

SITE = ZoneInfo("America/Sao_Paulo")
#: A Wednesday night: the 22:00–06:00 windows are open, the office-hours ones are not.
START = datetime(2025, 3, 5, 23, 30, tzinfo=SITE)
TARGET_NS = 1_000_000
LINUX = labels_of({"os": "linux"})
PARTITIONS = 4


def make_bases(rng: random.Random, count: int) -> list[BaseState]:
    bases = []
    for b in range(count):
        default = rng.randint(40, 90)
        office = Window(frozenset(range(5)), 8 * 60, 18 * 60, default // 2)
        if b % 2:
            evening = Window(frozenset(range(7)), 22 * 60, 6 * 60, default * 3 // 4)  # crosses midnight
        else:
            evening = Window(frozenset(range(6)), 19 * 60, 23 * 60, default // 3)
        bases.append(BaseState(f"MULTCOB{b:03d}", default, rng.choice((0, 0, 0, 4)), (office, evening)))
    return bases


def make_pending(rng: random.Random, count: int, backoff_share: float, first: int = 0) -> list[PendingMessage]:
    messages: list[PendingMessage] = []
    offsets = [first] * PARTITIONS
    key = b""
    for _ in range(count):
        if not key or rng.random() > 0.03:  # 3% repeat the previous CPF: later messages of a key wait
            key = f"{rng.randrange(10**11):011d}".encode()
        partition = rng.randrange(PARTITIONS)
        offset = offsets[partition] = offsets[partition] + 1
        retry = rng.random() < backoff_share
        not_before = START + timedelta(minutes=rng.randint(1, 30)) if retry else None
        messages.append(PendingMessage(partition, offset, key, 2 if retry else 1, not_before))
    return messages


def make_queues(rng: random.Random, bases: list[BaseState], count: int, low: int, high: int) -> list[QueueState]:
    queues = []
    for q in range(count):
        base = bases[q % len(bases)].name
        urgent = rng.random() < 0.2  # the urgent lane, capped per queue so that imports get slots too
        kind, priority, batch, most = ("COBSINC", 8, 1, 2) if urgent else ("IMPORTACAO", rng.randint(3, 6), 500, None)
        backoff = rng.choice((0.0,) * 7 + (0.05, 0.3, 1.0))  # 1 in 10 queues entirely in back-off
        labels = LINUX if rng.random() < 0.2 else frozenset()
        pending = make_pending(rng, rng.randint(low, high), backoff)
        topic = f"{base}.{1000 + q}.{kind}.CARGA"
        queues.append(QueueState(topic, base, kind, priority, batch, False, most, labels, pending=tuple(pending)))
    return queues


def task(farm: int, lease: Lease) -> tuple[int, str, frozenset[bytes]]:
    return farm, lease.queue, frozenset(m.key for m in lease.messages if m.key is not None)


def decide(snapshot: Snapshot, slot: FreeSlot, now: datetime, latencies: list[int]) -> tuple[Snapshot, Lease | None]:
    started = time.perf_counter_ns()
    decision = schedule(snapshot, slot, now)
    if isinstance(decision, Lease):
        snapshot = apply_lease(snapshot, decision, now)
    latencies.append(time.perf_counter_ns() - started)
    return snapshot, decision if isinstance(decision, Lease) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--farms", type=int, default=200)
    parser.add_argument("--slots", type=int, default=32, help="slots per farm")
    parser.add_argument("--bases", type=int, default=100)
    parser.add_argument("--queues", type=int, default=5000)
    parser.add_argument("--pending", type=int, nargs=2, default=(200, 1000), metavar=("MIN", "MAX"))
    parser.add_argument("--steady", type=int, default=20_000, help="completions, each followed by a decision")
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--explain", type=int, default=1000, help="queues explained, per explain phase")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the snapshot is built")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    began = time.perf_counter()

    farms: list[Labels] = [LINUX if rng.random() < 0.6 else labels_of({"os": "windows"}) for _ in range(args.farms)]
    bases = make_bases(rng, args.bases)
    queues = make_queues(rng, bases, args.queues, *args.pending)
    pending = sum(len(q.pending) for q in queues)
    started = time.perf_counter_ns()
    queues = [replace(q) for q in queues]  # what the service pays: checks, pending order, ready_at
    indexed = time.perf_counter_ns()
    snapshot = Snapshot.build(queues, bases, SITE)
    build_ms = ((indexed - started) / 1e6, (time.perf_counter_ns() - indexed) / 1e6)
    del queues
    if args.gc_freeze:
        gc.freeze()
    phases = ("fill", "complete", "steady", "idle", "explain/room", "explain/full")
    latencies: dict[str, list[int]] = {name: [] for name in phases}
    running: list[tuple[int, str, frozenset[bytes]]] = []  # (farm, topic, keys) of each task
    moments = (START + timedelta(milliseconds=step) for step in itertools.count(1))

    half = snapshot
    for farm, labels in enumerate(farms):
        if farm == len(farms) // 2:
            half = snapshot
        for _ in range(args.slots):
            snapshot, lease = decide(snapshot, FreeSlot(f"farm{farm}", labels), next(moments), latencies["fill"])
            if lease is not None:
                running.append(task(farm, lease))
    filled = len(running)

    low, high = args.pending
    for step in range(args.steady):
        index = rng.randrange(len(running))
        running[index], running[-1] = running[-1], running[index]
        farm, topic, keys = running.pop()
        started = time.perf_counter_ns()
        queue = snapshot.queues[topic]
        done = replace(queue, running=queue.running - 1, keys_in_flight=queue.keys_in_flight - keys)
        snapshot = snapshot.with_queue(done)
        latencies["complete"].append(time.perf_counter_ns() - started)
        if len(done.pending) < low:  # untimed read-ahead: the service tops the window up from the log
            fresh = make_pending(rng, rng.randint(low, high), 0.0, first=1_000_000 + step * 1000)
            snapshot = snapshot.with_queue(replace(done, pending=done.pending + tuple(fresh)))
        snapshot, lease = decide(snapshot, FreeSlot(f"farm{farm}", farms[farm]), next(moments), latencies["steady"])
        if lease is not None:
            running.append(task(farm, lease))

    # Untimed top-up on a farm with every label, so that no base is left with room.
    while True:
        snapshot, lease = decide(snapshot, FreeSlot("spare", LINUX), next(moments), [])
        if lease is None:
            break
    now = next(moments)
    at_limit = sum(
        snapshot.base_running(b.name) >= limit_in_force(b.max_workers, b.windows, now, SITE).max_workers
        for b in snapshot.bases.values()
    )
    for _ in range(args.idle):
        farm = rng.randrange(len(farms))
        started = time.perf_counter_ns()
        decision = schedule(snapshot, FreeSlot(f"farm{farm}", farms[farm]), now)
        latencies["idle"].append(time.perf_counter_ns() - started)
        assert isinstance(decision, Idle), decision

    topics = list(snapshot.queues)
    for phase, picture in (("explain/room", half), ("explain/full", snapshot)):
        for _ in range(args.explain):
            topic = rng.choice(topics)
            started = time.perf_counter_ns()
            explain(picture, topic, now, farms)
            latencies[phase].append(time.perf_counter_ns() - started)

    notes = (
        f"snapshot build: QueueStates {build_ms[0]:,.0f} ms + index {build_ms[1]:,.0f} ms; "
        f"fill leased {filled:,} slots; {at_limit}/{args.bases} bases at limit for idle; "
        f"gc {'frozen' if args.gc_freeze else 'as is'}"
    )
    report(args, pending, latencies, notes)
    Console().print(f"seed {args.seed}, total {time.perf_counter() - began:.1f} s")


def report(args: argparse.Namespace, pending: int, latencies: dict[str, list[int]], notes: str) -> None:
    title = f"{args.farms} farms x {args.slots} slots, {args.queues:,} queues / {args.bases} bases, {pending:,} pending"
    table = Table(title=title, caption=notes)
    for column in ("phase", "decisions", "decisions/s", "p50 µs", "p99 µs", "max µs", "≤ 1 ms"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    missed = []
    for name, values in latencies.items():
        ordered = sorted(values)
        p50, p99 = ordered[len(ordered) // 2], ordered[len(ordered) * 99 // 100]
        rate = len(ordered) / (sum(ordered) / 1e9)
        if p99 > TARGET_NS:
            missed.append(name)
        micros = (f"{ns / 1e3:,.0f}" for ns in (p50, p99, ordered[-1]))
        met = "[green]yes[/]" if p99 <= TARGET_NS else "[red]no[/]"
        table.add_row(name, f"{len(ordered):,}", f"{rate:,.0f}", *micros, met)
    console = Console()
    console.print(table)
    console.print(
        "target: p99 ≤ 1 ms per decision —", f"missed by {', '.join(missed)}" if missed else "met by every phase"
    )


if __name__ == "__main__":
    main()
