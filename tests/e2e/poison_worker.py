"""A worker for the poison-message tests, run as ``python tests/e2e/poison_worker.py``: every message whose
value is larger than 100,000 characters is an ``error`` ("XML grande demais"), the others are ok."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: A value above this is refused: the poison message of the test (1,040,000 bytes) and nothing else.
LARGEST_CHARACTERS = 100_000


def main() -> int:
    lines = []
    with open(os.environ["XTREAMING_INPUT"], encoding="utf-8") as file:
        for line in file:
            message = json.loads(line)
            if len(message["value"]) > LARGEST_CHARACTERS:
                lines.append({"id": message["id"], "status": "error", "detail": "XML grande demais"})
    Path(os.environ["XTREAMING_OUTPUT"]).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
