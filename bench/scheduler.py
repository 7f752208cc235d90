"""Decision latency of the coordinator's pure scheduling core on a site-sized snapshot.

Run: .venv/bin/python bench/scheduler.py [--seed 7] [--steady 10000] [--tails 0.1] [--gc settled|default]

Issue 3's scenario: 200 farms x 32 slots (40% lack os=linux); 5,000 queues over 100 bases, each base with
two windows in America/Sao_Paulo (on half of them one crosses midnight); IMPORTACAO queues (batch 500,
priority 3–6) and COBSINC (batch 1, priority 8, at most 2 workers each); 20% of queues require os=linux;
200–1000 pending messages per queue keyed by CPF (3% repeat the previous one), some in back-off. After a
lease or completion the read-ahead tops a queue below 200 pending back up (untimed), except the --tails
share of imports whose log is exhausted. The clock starts on a Wednesday at 23:30 and moves 1 ms a decision.

fill          decide every slot of every farm from empty (schedule, then apply_lease when it leases);
complete      finish a random running task: dataclasses.replace its QueueState, snapshot.with_queue;
steady        right after each completion, decide the freed slot;
idle          every base at its limit (topped up untimed after steady): what a free slot hears;
explain/room  explain a random queue given all farms' labels, on the snapshot half-way through fill;
explain/full  the same once every base is at its limit.

Once the snapshot is built the heap gets the coordinator's garbage-collector policy
(``coordinator.heap.settle_heap``, as ``xtreaming coordinator`` does once loaded); ``--gc default``
keeps CPython's defaults, to see what the policy is worth.
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

from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.core.scheduler import FreeSlot, Idle, Lease, apply_lease, explain, schedule
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import BaseState, Labels, QueueState, labels_of
from xtreaming.coordinator.core.windows import Window, limit_in_force
from xtreaming.coordinator.heap import settle_heap

SITE = ZoneInfo("America/Sao_Paulo")
#: A Wednesday night: the 22:00–06:00 windows are in force, the office-hours ones are not.
START = datetime(2025, 3, 5, 23, 30, tzinfo=SITE)
TARGET_NS = 1_000_000
LINUX = labels_of({"os": "linux"})
PARTITIONS = 4


def make_bases(rng: random.Random, count: int) -> list[BaseState]:
    bases = []
    for b in range(count):
        default = rng.randint(40, 90)
        office = Window(frozenset(range(5)), 8 * 60, 18 * 60, default // 2)
        night = (frozenset(range(7)), 22 * 60, 6 * 60, default * 3 // 4)  # crosses midnight
        evening = Window(*night) if b % 2 else Window(frozenset(range(6)), 19 * 60, 23 * 60, default // 3)
        bases.append(BaseState(f"MULTCOB{b:03d}", default, rng.choice((0, 0, 0, 4)), (office, evening)))
    return bases


def make_pending(rng: random.Random, count: int, backoff_share: float, first: int = 0) -> tuple[PendingMessage, ...]:
    messages: list[PendingMessage] = []
    offsets = [first] * PARTITIONS
    key = b""
    for _ in range(count):
        if not key or rng.random() > 0.03:
            key = f"{rng.randrange(10**11):011d}".encode()
        partition = rng.randrange(PARTITIONS)
        offset = offsets[partition] = offsets[partition] + 1
        retry = rng.random() < backoff_share
        not_before = START + timedelta(minutes=rng.randint(1, 30)) if retry else None
        messages.append(PendingMessage(partition, offset, key, 2 if retry else 1, not_before))
    return tuple(messages)


def make_queues(rng: random.Random, bases: list[BaseState], count: int, low: int, high: int) -> list[QueueState]:
    queues = []
    for q in range(count):
        base = bases[q % len(bases)].name
        urgent = rng.random() < 0.2
        kind, priority, batch, most = ("COBSINC", 8, 1, 2) if urgent else ("IMPORTACAO", rng.randint(3, 6), 500, None)
        backoff = rng.choice((0.0,) * 7 + (0.05, 0.3, 1.0))  # 1 in 10 queues entirely in back-off
        labels = LINUX if rng.random() < 0.2 else frozenset()
        pending = make_pending(rng, rng.randint(low, high), backoff)
        topic = f"{base}.{1000 + q}.{kind}.CARGA"
        queues.append(QueueState(topic, base, kind, priority, batch, False, most, labels, pending=pending))
    return queues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--farms", type=int, default=200)
    parser.add_argument("--slots", type=int, default=32, help="slots per farm")
    parser.add_argument("--bases", type=int, default=100)
    parser.add_argument("--queues", type=int, default=5000)
    parser.add_argument("--pending", type=int, nargs=2, default=(200, 1000), metavar=("MIN", "MAX"))
    parser.add_argument("--tails", type=float, default=0.1, help="share of imports whose log is exhausted")
    parser.add_argument("--steady", type=int, default=10_000, help="completions, each followed by a decision")
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--explain", type=int, default=1000, help="queues explained, per explain phase")
    parser.add_argument("--gc", choices=("settled", "default"), default="settled", help="garbage-collector policy")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    began = time.perf_counter()
    low, high = args.pending

    farms: list[Labels] = [LINUX if rng.random() < 0.6 else labels_of({"os": "windows"}) for _ in range(args.farms)]
    bases = make_bases(rng, args.bases)
    queues = make_queues(rng, bases, args.queues, low, high)
    tails = {q.topic for q in queues if q.kind == "IMPORTACAO" and rng.random() < args.tails}
    pending = sum(len(q.pending) for q in queues)
    started = time.perf_counter_ns()
    # What the service pays per rebuilt queue: checks, pending sorted from the runtime's plain tuple, readiness.
    queues = [replace(q, pending=tuple(q.pending)) for q in queues]
    indexed = time.perf_counter_ns()
    snapshot = Snapshot.build(queues, bases, SITE)
    build_ms = ((indexed - started) / 1e6, (time.perf_counter_ns() - indexed) / 1e6)
    if args.gc == "settled":
        settle_heap()
    phases = ("fill", "complete", "steady", "idle", "explain/room", "explain/full")
    latencies: dict[str, list[int]] = {name: [] for name in (*phases, "top-up")}
    running: list[tuple[int, str, frozenset[bytes]]] = []  # (farm, topic, keys) of each task
    moments = (START + timedelta(milliseconds=step) for step in itertools.count(1))
    refills = itertools.count(1)

    def read_ahead(topic: str) -> None:
        nonlocal snapshot
        queue = snapshot.queues[topic]
        if topic not in tails and len(queue.pending) < low:
            fresh = make_pending(rng, rng.randint(low, high), 0.0, first=next(refills) * 1000)
            snapshot = snapshot.with_queue(replace(queue, pending=queue.pending + fresh))

    def decide(farm: int, labels: Labels, phase: str) -> bool:
        nonlocal snapshot
        now = next(moments)
        started = time.perf_counter_ns()
        decision = schedule(snapshot, FreeSlot(f"farm{farm}", labels), now)
        if isinstance(decision, Lease):
            snapshot = apply_lease(snapshot, decision, now)
        latencies[phase].append(time.perf_counter_ns() - started)
        if isinstance(decision, Idle):
            return False
        running.append((farm, decision.queue, frozenset(m.key for m in decision.messages if m.key is not None)))
        read_ahead(decision.queue)
        return True

    half = snapshot
    for farm, labels in enumerate(farms):
        half = snapshot if farm == len(farms) // 2 else half
        for _ in range(args.slots):
            decide(farm, labels, "fill")
    filled = len(running)

    for _ in range(args.steady):
        index = rng.randrange(len(running))
        running[index], running[-1] = running[-1], running[index]
        farm, topic, keys = running.pop()
        started = time.perf_counter_ns()
        queue = snapshot.queues[topic]
        snapshot = snapshot.with_queue(
            replace(queue, running=queue.running - 1, keys_in_flight=queue.keys_in_flight - keys)
        )
        latencies["complete"].append(time.perf_counter_ns() - started)
        read_ahead(topic)
        decide(farm, farms[farm], "steady")

    while decide(-1, LINUX, "top-up"):  # untimed: a farm with every label takes what any base has room for
        pass
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
        f"snapshot build: QueueStates {build_ms[0]:,.0f} ms + index {build_ms[1]:,.0f} ms; fill leased {filled:,} "
        f"slots; {len(tails)} finishing imports; {at_limit}/{args.bases} bases at limit for idle; "
        f"gc {args.gc} {gc.get_threshold()}"
    )
    report(args, pending, {name: latencies[name] for name in phases}, notes)
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
        if p99 > TARGET_NS:
            missed.append(name)
        micros = (f"{ns / 1e3:,.0f}" for ns in (p50, p99, ordered[-1]))
        met = "[green]yes[/]" if p99 <= TARGET_NS else "[red]no[/]"
        table.add_row(name, f"{len(ordered):,}", f"{len(ordered) / (sum(ordered) / 1e9):,.0f}", *micros, met)
    console = Console()
    console.print(table)
    console.print("target: p99 ≤ 1 ms per decision —", f"missed by {', '.join(missed)}" if missed else "met")


if __name__ == "__main__":
    main()
