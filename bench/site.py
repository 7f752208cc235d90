"""A whole site against one coordinator: many simulated farms over real HTTP, and where it saturates.

Run: .venv/bin/python bench/site.py [--farms 25 50 100 200] [--slots 32] [--task-s 2] [--jitter 0.5]
     [--warmup 10] [--duration 20] [--clients 1 3]

Target (issue): 200 farms x 32 slots running 2-second batch-1 tasks (3,200 tasks/s) with a lease round trip
p99 ≤ 100 ms. Each point of the grid (every farms x slots x task length x clients given) gets a fresh site:
``xtreaming coordinator`` as its own process on the embedded defaults (SQLite log and state), a COBSINC queue
(batch size 1) whose log holds more messages than the point can take, its base's limit at every slot of every
farm. The farms are asyncio tasks in ``--clients`` load processes (each count given is a point of its own: one
process may be the bottleneck itself), each farm with its own keep-alive HTTP client (as each is its own
machine), doing what ``xtreaming.farm.node`` does, with the same constants: register; heartbeat every interval
the coordinator gives, with every slot's state and the results on their way; when tasks end, one lease request
carrying every ended task's completion and asking work for every idle slot (``wait_s`` 0), the framed answer
asked for and read as the farm reads it, at most
``MAX_EXCHANGES`` such requests out, the results that end meanwhile riding on the next; idle slots no request
asks for go to the dispatcher's long-poll (results ride on lease requests only: the farm's reporter thread
sends them alone only while none can). A leased task "runs" for ``--task-s`` seconds, give or take
``--jitter`` (uniform, the same mean): real tasks do not all take the same time, and a farm whose tasks end in
lockstep would need one request per batch of 32.

Measured over ``--duration`` seconds after ``--warmup``: tasks/s started against those offered (farms x
slots / task length), lease round trip p50/p99 (from sending a request to reading its answer, for requests
with ``wait_s`` 0; one not answered within ``LEASE_MARGIN_S`` is an error instead; the dispatcher's, which
would wait in a long-poll had the coordinator no work, are counted, not timed), lease requests/s and
tasks started per request, and the CPU (% of one core; this machine's cores are in the title) of the
coordinator, also per task started (what sizes a site once the coordinator is the limit), of the load
processes (one near 100% is the bottleneck itself, and the table says so) and of the other programs on
the machine meanwhile, which compete for the same cores.
"refused" counts completions the coordinator no longer took (the lease had expired: an overloaded
coordinator that leaves heartbeats unanswered counts farms lost and leases their tasks again). "limit"
says what ran out at a saturated point (started < 95% of offered, or p99 > 100 ms): a load process or the
coordinator at 90% of a core or more, else the machine's cores (other programs included), else the
coordinator short of a core: its request threads take turns on one interpreter lock and on its own lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import multiprocessing
import os
import random
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from cpu import cpu_s
from e2e import BenchSite, fill
from xtreaming.defaults import DEFAULT_DISCOVERY_INTERVAL_S, DEFAULT_HEARTBEAT_INTERVAL_S
from xtreaming.farm.config import DEFAULT_LEASE_WAIT_S
from xtreaming.farm.links import MAX_REPORTING
from xtreaming.farm.node import LEASE_MARGIN_S, MAX_EXCHANGES
from xtreaming.farm.protocol import read_lease
from xtreaming.farm.reporting import MAX_PIGGYBACK_COMPLETIONS, Backoff
from xtreaming.wire import lease_frame

#: What a farm asks for: the framed answer (``xtreaming.wire.lease_frame``), which it reads as the farm does.
FRAMED = {"Accept": lease_frame.MEDIA_TYPE}

BASE = "MULTCOB02"
TOPIC = f"{BASE}.1186.COBSINC.ATUALIZA_DIVIDA"
VALUE = b'{"cpf":"00000000000","contrato":"123456789","acao":"atualizar_divida","valor":"1234.56"}'
#: The queue's worker: the farms here are the benchmark itself, but a queue with none is never scheduled.
NOOP = "xtreaming.demo.worker:noop"
TARGET_P99_MS = 100.0
#: A point is saturated when it starts fewer tasks than this share of those offered (or misses the p99).
SATURATED_SHARE = 0.95
#: A process using this share of a core is the limit of its side.
BUSY_SHARE = 0.9


@dataclass
class Records:
    """What one load process saw, each event with its wall-clock time (``time.time()``), so that the
    measuring window is cut afterwards, the same for every process."""

    #: Lease requests with ``wait_s`` 0 that were answered: (sent at, seconds to the answer).
    round_trips: list[tuple[float, float]] = field(default_factory=list)
    #: Answered long-polls (``wait_s`` > 0), by when they were sent.
    long_polls: list[float] = field(default_factory=list)
    #: When each leased task started on a slot.
    started: list[float] = field(default_factory=list)
    #: Completions the coordinator did not accept (the lease had expired): must stay empty.
    refused: list[float] = field(default_factory=list)
    #: Failed requests: (when, what).
    errors: list[tuple[float, str]] = field(default_factory=list)


#: CPU seconds of the coordinator, of each load process and of the whole machine, at one moment.
CpuSample = tuple[float, list[float], float]


class SimulatedFarm:
    """One farm of ``xtreaming.farm.node``'s behaviour whose tasks are timers (no process, no worker)."""

    def __init__(
        self, url: str, name: str, slots: int, task_s: float, jitter: float, records: Records, tls: ssl.SSLContext
    ) -> None:
        self.name, self.task_s, self.jitter, self.records = name, task_s, jitter, records
        limits = httpx.Limits(max_connections=MAX_EXCHANGES + 2)  # the dispatcher, the exchanges, the heartbeat
        self.api = httpx.AsyncClient(base_url=url, limits=limits, verify=tls)
        self.instance = uuid.uuid4().hex
        self.farm_id, self.heartbeat_interval_s = name, DEFAULT_HEARTBEAT_INTERVAL_S  # until it registers
        self.backoff = Backoff()
        self.slots: list[str | None] = [None] * slots  # the task each slot runs
        self.results: list[str] = []  # ended tasks whose completions no request carries yet
        self.unreported: set[str] = set()  # ended tasks the coordinator has not answered for yet
        self.asked: set[int] = set()  # idle slots a request out asks work for
        self.exchanges = 0  # requests out sent as tasks ended
        self.starved = False  # the last answer had no task for some slot it asked for
        self.wake = asyncio.Event()
        self.requests: set[asyncio.Task[None]] = set()
        self.stopped = False

    async def register(self) -> None:
        body = {"name": self.name, "labels": {}, "slots": len(self.slots), "instance": self.instance}
        answer = (await self.api.post("/api/farms/register", json=body, timeout=60)).raise_for_status().json()
        self.farm_id, self.heartbeat_interval_s = answer["farm_id"], float(answer["heartbeat_interval_s"])

    async def dispatch(self) -> None:
        """The dispatcher: idle slots no request asks for wait in a long-poll."""
        while not self.stopped:
            self.wake.clear()
            idle = self.unasked()
            if not idle:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                continue
            self.asked.update(idle)
            try:
                answered = await self.request(idle, self.take_results(), wait_s=DEFAULT_LEASE_WAIT_S)
            finally:
                self.asked.difference_update(idle)
            if answered:
                self.backoff.reset()
            else:
                await asyncio.sleep(self.backoff.next_delay())

    async def heartbeats(self) -> None:
        """At a fixed rate, as ``xtreaming.farm.links`` does: every slot's state and the results on their way."""
        next_at = time.monotonic() + self.heartbeat_interval_s
        while not self.stopped:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + self.heartbeat_interval_s, time.monotonic())
            slots = [
                {"index": i, "state": "idle"} if task is None else
                {"index": i, "state": "running", "task_id": task, "pid": None, "done": None, "total": None,
                 "rss_bytes": None}
                for i, task in enumerate(self.slots)
            ]  # fmt: skip
            body = {"slots": slots, "reporting": sorted(self.unreported)[:MAX_REPORTING], "instance": self.instance}
            try:
                path = f"/api/farms/{self.farm_id}/heartbeat"
                (await self.api.post(path, json=body, timeout=self.heartbeat_interval_s)).raise_for_status()
            except httpx.HTTPError as exc:
                self.records.errors.append((time.time(), f"heartbeat: {type(exc).__name__} {exc}"))

    def unasked(self) -> list[int]:
        return [i for i, task in enumerate(self.slots) if task is None and i not in self.asked]

    def take_results(self) -> list[str]:
        taken, self.results = self.results[:MAX_PIGGYBACK_COMPLETIONS], self.results[MAX_PIGGYBACK_COMPLETIONS:]
        return taken

    def ended(self, index: int, task_id: str) -> None:
        """A task's time is up: its slot frees and its result goes out with the next request."""
        self.slots[index] = None
        self.unreported.add(task_id)
        self.results.append(task_id)
        if not self.stopped and self.exchanges < MAX_EXCHANGES and (work := self.take_exchange()):
            self.exchanges += 1
            request = asyncio.create_task(self.exchange(*work))
            self.requests.add(request)
            request.add_done_callback(self.requests.discard)
        self.wake.set()

    def take_exchange(self) -> tuple[list[int], list[str]] | None:
        """The idle slots (while the coordinator has work) and results an exchange carries; None: nothing."""
        idle = [] if self.starved else self.unasked()
        results = self.take_results()
        if not idle and not results:
            return None
        self.asked.update(idle)
        return idle, results

    async def exchange(self, idle: list[int], results: list[str]) -> None:
        """Results and idle slots in one request (``wait_s`` 0), again while more are ready."""
        work: tuple[list[int], list[str]] | None = idle, results
        try:
            while work is not None:
                try:
                    answered = await self.request(*work, wait_s=0.0)
                finally:
                    self.asked.difference_update(work[0])
                    self.wake.set()  # slots still idle are the dispatcher's
                work = self.take_exchange() if answered else None
        finally:
            self.exchanges -= 1

    async def request(self, idle: list[int], results: list[str], *, wait_s: float) -> bool:
        """One lease request: ``results`` delivered, work asked for the ``idle`` slots; True when answered."""
        completion: dict[str, Any] = {"default": "ok", "detail": None, "results": []}
        completions = [{"task_id": task_id, **completion} for task_id in results]
        body = {"slots": idle, "wait_s": wait_s, "completions": completions}
        sent, started = time.time(), time.perf_counter()
        try:
            response = await self.api.post(
                f"/api/farms/{self.farm_id}/lease", json=body, headers=FRAMED, timeout=wait_s + LEASE_MARGIN_S
            )
            answer = read_lease(response.raise_for_status().content)
        except httpx.HTTPError as exc:
            self.records.errors.append((sent, f"lease: {type(exc).__name__} {exc}"))
            self.results[:0] = results  # back at the front, for the next request
            return False
        if wait_s:
            self.records.long_polls.append(sent)
        else:
            self.records.round_trips.append((sent, time.perf_counter() - started))
        for settled in answer.settled:
            self.unreported.discard(settled["task_id"])
            if not settled["accepted"]:
                self.records.refused.append(sent)
        free = set(idle)
        for task, _ in answer.tasks:
            if not free:
                self.records.errors.append((sent, f"lease: task {task['task_id']} came for no idle slot"))
                continue
            index = task["slot"] if task["slot"] in free else min(free)
            free.discard(index)
            self.slots[index] = task["task_id"]
            self.records.started.append(time.time())
            length_s = self.task_s * random.uniform(1 - self.jitter, 1 + self.jitter)
            asyncio.get_running_loop().call_later(length_s, self.ended, index, task["task_id"])
        if idle:
            self.starved = len(free) > 0
        return True


async def run_farms(url: str, names: list[str], slots: int, task_s: float, jitter: float, go: Event, stop: Event,
                    ready: Queue[Any]) -> Records:  # fmt: skip
    """Register the farms, say so on ``ready``, then run them from ``go`` until ``stop``."""
    records = Records()
    tls = ssl.create_default_context()  # one for all: each takes ~50 ms to load the CA bundle
    farms = [SimulatedFarm(url, name, slots, task_s, jitter, records, tls) for name in names]
    await asyncio.gather(*(farm.register() for farm in farms))
    ready.put(None)
    await asyncio.to_thread(go.wait)
    loops = [asyncio.create_task(job()) for farm in farms for job in (farm.dispatch, farm.heartbeats)]
    await asyncio.to_thread(stop.wait)
    for farm in farms:  # a flag as well: a cancelled ``wait_for`` may swallow its cancellation
        farm.stopped = True
    tasks = [*loops, *(request for farm in farms for request in farm.requests)]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=LEASE_MARGIN_S)
    for farm in farms:
        await farm.api.aclose()
    return records


def load_process(url: str, names: list[str], slots: int, task_s: float, jitter: float, go: Event, stop: Event,
                 ready: Queue[Any], out: Queue[Any]) -> None:  # fmt: skip
    """A load process: its farms on one event loop; what they saw goes to ``out`` (``Records``' fields), or what
    failed."""
    if importlib.util.find_spec("sniffio") is None:
        # httpcore imports sniffio at every request to learn the async library, and a failed import is not
        # remembered: each searched the whole path again (~0.7 ms, most of this process's CPU). None here makes
        # the import fail at once, and httpcore then takes asyncio, which this is.
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            records = runner.run(run_farms(url, names, slots, task_s, jitter, go, stop, ready))
            out.put(vars(records))  # plain lists: this module is ``__mp_main__`` here, ``__main__`` there
    except Exception as exc:  # the parent reports it: a load process must never leave it waiting
        ready.put(exc)
        out.put(exc)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (as the coordinator's uvicorn uses it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@dataclass(frozen=True, slots=True)
class Point:
    farms: int
    slots: int
    task_s: float
    #: Load processes running the farms.
    clients: int
    started_per_s: float
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    long_polls: int
    refused: int
    errors: list[str]
    coordinator_cpu: float  # share of one core
    load_cpu: list[float]  # each load process's, share of one core
    #: What the rest of the machine used meanwhile (other programs), in cores: they compete for the same CPU.
    other_cpu: float

    @property
    def offered_per_s(self) -> float:
        return self.farms * self.slots / self.task_s

    @property
    def coordinator_us_per_task(self) -> float:
        """The coordinator's CPU per task started: what sizes a site once its CPU is the limit."""
        return self.coordinator_cpu / self.started_per_s * 1e6 if self.started_per_s else float("nan")

    @property
    def saturated(self) -> bool:
        return self.started_per_s < SATURATED_SHARE * self.offered_per_s or not self.p99_ms <= TARGET_P99_MS

    def limit(self) -> str:
        """What ran out at a saturated point, as far as CPU shows it (see the module docstring)."""
        if not self.saturated:
            return "-"
        held = [("load generator", max(self.load_cpu)), ("coordinator CPU", self.coordinator_cpu)]
        busy = [name for name, cpu in held if cpu >= BUSY_SHARE]
        if busy:
            return " + ".join(busy)
        if self.coordinator_cpu + sum(self.load_cpu) + self.other_cpu >= BUSY_SHARE * (os.cpu_count() or 1):
            return "machine CPU"
        return "coordinator"


def measure(root: Path, farms: int, slots: int, task_s: float, clients: int, args: argparse.Namespace) -> Point:
    """One point of the grid on a fresh site (see the module docstring)."""
    offered = farms * slots / task_s
    site = BenchSite(root, {"XTREAMING_DISCOVERY_INTERVAL_S": str(DEFAULT_DISCOVERY_INTERVAL_S)})  # the default
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []
    stop = context.Event()
    try:
        site.start("coordinator")
        site.wait("the coordinator", lambda: site.api.get("/healthz").status_code == 200)
        settings = {"handler": NOOP, "batch_size": 1}
        site.api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
        fill(root / "log.db", int(offered * (args.warmup + args.duration + 10)) + farms * slots, TOPIC, VALUE)
        site.wait("the queue", lambda: site.api.get(f"/api/queues/{TOPIC}").status_code == 200)
        site.api.patch(f"/api/bases/{BASE}", json={"max_workers": farms * slots}).raise_for_status()
        go, ready, out = context.Event(), context.Queue(), context.Queue()
        names = [f"sim-{i:04d}" for i in range(farms)]
        for share in range(clients):
            work = (site.url, names[share::clients], slots, task_s, args.jitter, go, stop, ready, out)
            processes.append(context.Process(target=load_process, args=work, daemon=True))
            processes[-1].start()
        for _ in processes:
            if isinstance(failure := ready.get(timeout=120), Exception):
                raise SystemExit(f"a load process failed to register its farms: {failure!r}")
        coordinator = psutil.Process(site.processes[0].pid)
        loads = [psutil.Process(p.pid) for p in processes if p.pid is not None]
        go.set()
        begin = time.time() + args.warmup
        window = begin, begin + args.duration
        time.sleep(max(0.0, window[0] - time.time()))
        before = cpu_s(coordinator), [cpu_s(load) for load in loads], busy_s()
        time.sleep(max(0.0, window[1] - time.time()))
        after = cpu_s(coordinator), [cpu_s(load) for load in loads], busy_s()
        # Every request sent within the window is answered or has timed out by then: none leaves the tail out.
        time.sleep(LEASE_MARGIN_S)
        stop.set()
        outcomes = [out.get(timeout=120) for _ in processes]
    finally:
        stop.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        site.close()
    if failures := [o for o in outcomes if isinstance(o, Exception)]:
        raise SystemExit(f"a load process failed: {failures[0]!r}")
    return tally(farms, slots, task_s, clients, window, [Records(**o) for o in outcomes], before, after)


def tally(farms: int, slots: int, task_s: float, clients: int, window: tuple[float, float], outcomes: list[Records],
          before: CpuSample, after: CpuSample) -> Point:  # fmt: skip
    """The point's figures from the events its load processes saw within ``window``."""
    start, end = window
    duration = end - start

    def inside(at: float) -> bool:
        return start <= at < end

    round_trips = [s * 1000 for o in outcomes for at, s in o.round_trips if inside(at)]
    cuts = statistics.quantiles(round_trips, n=100) if len(round_trips) > 1 else [float("nan")] * 99
    long_polls = sum(inside(at) for o in outcomes for at in o.long_polls)
    errors = [what for o in outcomes for at, what in o.errors if inside(at)]
    return Point(
        farms, slots, task_s, clients,
        started_per_s=sum(inside(at) for o in outcomes for at in o.started) / duration,
        p50_ms=cuts[49],
        p99_ms=cuts[98],
        requests_per_s=(len(round_trips) + long_polls) / duration,
        long_polls=long_polls,
        refused=sum(inside(at) for o in outcomes for at in o.refused),
        errors=errors,
        coordinator_cpu=(after[0] - before[0]) / duration,
        load_cpu=[(a - b) / duration for a, b in zip(after[1], before[1], strict=True)],
        other_cpu=(after[2] - before[2] - after[0] + before[0] - sum(after[1]) + sum(before[1])) / duration,
    )  # fmt: skip


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, every program)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def print_points(console: Console, points: list[Point], args: argparse.Namespace) -> None:
    table = Table(
        title=f"Simulated farms against one coordinator (embedded log and state; {os.cpu_count()} cores here; "
        f"task length ±{args.jitter:.0%}; {args.duration:g} s after "
        f"{args.warmup:g} s warm-up)"
    )
    columns = ["farms", "slots", "task s", "load proc.", "offered /s", "started /s", "vs offered", "lease req/s",
               "tasks /req", "p50 ms", "p99 ms", "long polls", "refused", "errors", "coord. CPU", "coord. µs /task",
               "load CPU\nall/most", "others' CPU", "limit"]  # fmt: skip
    for column in columns:
        table.add_column(
            column, justify="left" if column == "limit" else "right", no_wrap=column in ("limit", "load CPU\nall/most")
        )
    for p in points:
        table.add_row(
            str(p.farms), str(p.slots), f"{p.task_s:g}", str(p.clients), f"{p.offered_per_s:,.0f}",
            f"{p.started_per_s:,.0f}",
            f"{p.started_per_s / p.offered_per_s:.0%}", f"{p.requests_per_s:,.0f}",
            f"{p.started_per_s / p.requests_per_s:.1f}" if p.requests_per_s else "-", f"{p.p50_ms:.1f}",
            f"{p.p99_ms:.1f}", f"{p.long_polls:,}", f"{p.refused:,}", f"{len(p.errors):,}",
            f"{p.coordinator_cpu:.0%}", f"{p.coordinator_us_per_task:,.0f}",
            f"{sum(p.load_cpu):.0%}/{max(p.load_cpu):.0%}", f"{p.other_cpu:.0%}", p.limit(),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"target: 200 farms x 32 slots x 2 s tasks (3,200 tasks/s) started at ≥ {SATURATED_SHARE:.0%} of offered "
        f"with lease round trip p99 ≤ {TARGET_P99_MS:g} ms; CPU in % of one core"
    )
    for clients in sorted({p.clients for p in points}):
        run = [p for p in points if p.clients == clients]
        saturated = next((p for p in run if p.saturated), None)
        fine = [p for p in run if not p.saturated]  # a busy spell of the machine may fail a point below others
        best = f"; the largest point within target: {label(fine[-1])}" if fine else "; no point was within target"
        if saturated is None:
            console.print(f"no saturation up to {label(run[-1])}")
        else:
            share = saturated.started_per_s / saturated.offered_per_s
            console.print(
                f"saturates at {label(saturated)}: {saturated.started_per_s:,.0f} tasks/s started ({share:.0%}), "
                f"p99 {saturated.p99_ms:.1f} ms, limit: {saturated.limit()}{best}"
            )
    for p in points:
        if p.errors:
            console.print(f"{label(p)}: {len(p.errors)} failed request(s), the first: {p.errors[0]}")


def label(point: Point) -> str:
    offered = f"{point.offered_per_s:,.0f}/s offered"
    clients = f"{point.clients} load process{'es' if point.clients > 1 else ''}"
    return f"{point.farms} farms x {point.slots} slots x {point.task_s:g} s tasks ({offered}; {clients})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farms", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--slots", type=int, nargs="+", default=[32], help="Slots of each farm.")
    parser.add_argument("--task-s", type=float, nargs="+", default=[2.0], help="Mean task length.")
    parser.add_argument("--jitter", type=float, default=0.5, help="Task lengths are uniform in task-s x (1 ± jitter).")
    parser.add_argument("--warmup", type=float, default=10.0, help="Seconds run before measuring.")
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds measured at each point.")
    parser.add_argument(
        "--clients", "--processes", type=int, nargs="+", default=[1, 3],
        help="Load processes sharing the farms (each count a point of the grid): one may be the bottleneck itself.",
    )  # fmt: skip
    args = parser.parse_args()
    if not 0 <= args.jitter < 1:
        parser.error(f"--jitter {args.jitter:g}: must be at least 0 and below 1")
    if min(args.farms + args.slots + args.clients) < 1 or min(args.task_s) <= 0 or args.duration <= 0:
        parser.error("farms, slots, clients, task length and duration must be positive")
    if max(args.clients) > min(args.farms):
        parser.error(f"--clients {max(args.clients)}: more load processes than the {min(args.farms)} farm(s) to share")
    grid = sorted(
        itertools.product(args.farms, args.slots, args.task_s, args.clients), key=lambda g: (g[0] * g[1] / g[2], g)
    )
    console = Console(width=190)
    points = []
    for farms, slots, task_s, clients in grid:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                points.append(measure(Path(tmp), farms, slots, task_s, clients, args))
        except SystemExit as exc:  # a point that fails (a site that never started) leaves the others' figures
            console.print(f"{farms} farms x {slots} slots x {task_s:g} s tasks, {clients} load process(es): {exc}")
            continue
        console.print(f"measured {label(points[-1])}", style="dim")
    if not points:
        raise SystemExit("no point of the grid could be measured")
    print_points(console, points, args)


if __name__ == "__main__":
    main()
