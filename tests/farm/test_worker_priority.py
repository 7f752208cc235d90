"""Workers run below their farm's priority, so that workers keeping every core busy never starve the farm's
heartbeat and renewal watch (the coordinator would count lost a farm whose tasks still run)."""

from __future__ import annotations

import psutil

from tests.farm.builders import worker
from tests.farm.site import Site
from tests.waiting import wait_until
from xtreaming.farm.control import WORKER_NICE_STEPS

TOPIC = "MULTCOB02.1186.IMPORTACAO.CARGA"


def test_a_command_worker_and_its_children_run_below_the_farm(site: Site) -> None:
    site.profile(".*", command=worker("hang"), batch_size=5)  # the worker starts a child at once
    site.publish(TOPIC, 5)
    farm = site.farm("farm-a", slots=1)

    [pids] = wait_until(site.pid_files, 10, "the worker and its child to start")

    below = min(19, psutil.Process(farm.process.pid).nice() + WORKER_NICE_STEPS)
    assert [psutil.Process(pid).nice() for pid in pids] == [below, below]


def test_a_handler_process_runs_below_the_farm(site: Site) -> None:
    site.profile(".*", handler="tests.farm.priority_handlers:busy_with_pid", batch_size=5)
    site.publish(TOPIC, 5)
    farm = site.farm("farm-a", slots=1)

    [[pid]] = wait_until(site.pid_files, 20, "the handler to start")

    below = min(19, psutil.Process(farm.process.pid).nice() + WORKER_NICE_STEPS)
    assert psutil.Process(pid).nice() == below
