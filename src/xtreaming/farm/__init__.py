"""The farm agent: runs the coordinator's tasks on this machine's worker slots (DESIGN §6)."""
