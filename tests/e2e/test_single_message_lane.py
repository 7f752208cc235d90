"""End to end: a lane of one-message tasks (a COBSINC's default) on a farm of eight slots, where the farm sends
one lease request for the results and idle slots of many tasks at once."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.farm.site import Site, once_each

TOPIC = "MULTCOB04.2001.COBSINC.ATUALIZA"
MESSAGES = 20_000


def lease_requests(site: Site) -> int:
    """Lease requests the coordinator answered so far (its request-duration histogram's count)."""
    text = site.api.get("/metrics").text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "xtreaming_http_request_duration_seconds_count"
            and sample.labels.get("route") == "/api/farms/{farm_id}/lease"
        )
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_20k_one_message_tasks_on_eight_slots_are_acked_once_with_fewer_requests_than_tasks(site: Site) -> None:
    site.profile(".*", handler="tests.farm.handlers:every_tenth_retried_once", batch_size=1, backoff_s=0)
    site.publish(TOPIC, MESSAGES)
    site.call("PATCH", "/api/bases/MULTCOB04", {"max_workers": 8})
    site.farm("farm-sync", slots=8)

    acks = site.wait_acked(TOPIC, MESSAGES, timeout_s=240)

    assert len(acks) == MESSAGES
    assert once_each(acks)
    assert Counter(a["status"] for a in acks) == {"ok": MESSAGES}
    retried = [a for a in acks if a["offset"] % 10 == 0]
    assert len(retried) == MESSAGES // 10
    assert all(a["attempts"] == 2 for a in retried)
    assert all(a["attempts"] == 1 for a in acks if a["offset"] % 10)
    tasks = len({a["task_id"] for a in acks}) + len(retried)  # a retried message ran in two tasks
    assert tasks == MESSAGES + len(retried)
    # One request a task before; now each carries the results and next leases of the slots that ended meanwhile.
    assert lease_requests(site) < 0.9 * tasks
