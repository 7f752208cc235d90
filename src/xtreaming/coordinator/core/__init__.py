"""The pure scheduling core: time windows, queue and base state, the indexed snapshot, the scheduler,
its explanations and the ledger's offset bookkeeping. Plain synchronous Python with no I/O: the
service feeds it state and ``now``, the tests and ``bench/scheduler.py`` drive it directly."""
