"""Generated client portfolios ("carteiras") as CSV files, like the CRM's pre-processor writes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Final

FIRST_NAMES: Final = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Hugo", "Iara", "João")
LAST_NAMES: Final = ("Silva", "Souza", "Oliveira", "Santos", "Lima", "Pereira", "Costa", "Rodrigues", "Almeida")


def cpf_digits(number: int) -> str:
    """A valid CPF (with its two check digits) from a 9-digit number."""
    base = [int(d) for d in f"{number % 1_000_000_000:09d}"]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(base, range(length + 1, 1, -1), strict=True))
        base.append((total * 10 % 11) % 10)
    return "".join(map(str, base))


def write_portfolio(path: Path, clients: int, *, seed: int, duplicate_rate: float = 0.01) -> int:
    """Write ``clients`` rows (``;``-separated, with some repeated CPFs); return the distinct CPFs."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = rng.sample(range(1_000_000_000), clients)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("cpf;nome;valor_divida;vencimento\n")
        for number in numbers:
            cpf = cpf_digits(number)
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            row = f"{cpf};{name};{rng.randint(50, 50_000)}.{rng.randint(0, 99):02d};2026-{rng.randint(1, 12):02d}-10\n"
            out.write(row)
            if rng.random() < duplicate_rate:
                out.write(row)  # the same client twice in one load: published once
    return clients
