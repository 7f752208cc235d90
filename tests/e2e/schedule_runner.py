"""``python -m tests.e2e.schedule_runner STORE_URL BROKER_URL TAKEOVER_S``: a coordinator's scheduled publishing on
its own, in a process of its own, always believing it leads (the worst case: no election keeps two from running
the same schedules). It runs until killed."""

from __future__ import annotations

import logging
import sys
import threading
from zoneinfo import ZoneInfo

from xtreaming.broker import open_broker
from xtreaming.coordinator.schedules import Schedules
from xtreaming.coordinator.store import Store


def main() -> None:
    store_url, broker_url, takeover_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(message)s")
    store = Store.open(store_url)
    broker = open_broker(broker_url)
    schedules = Schedules(
        store, lambda: broker, zone=ZoneInfo("America/Sao_Paulo"), partitions=2, takeover_s=takeover_s
    )
    schedules.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
