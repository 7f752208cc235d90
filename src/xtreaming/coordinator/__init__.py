"""The per-site coordinator: scheduling, time windows, the offset ledger (pure) and what drives them."""
