"""Bases: limits, reserved minimum, pause/resume, and their time windows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from xtreaming.coordinator.api.auth import Operator, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import INT64_MAX, BaseLimits, BaseRow, WindowIn, WindowOut
from xtreaming.coordinator.figures import BaseFigures, base_figures
from xtreaming.coordinator.records import WindowRecord
from xtreaming.coordinator.service import Coordinator
from xtreaming.errors import BaseNotFound

router = APIRouter(prefix="/api", tags=["bases"])


@router.get("/bases", response_model=list[BaseRow])
def list_bases(request: Request, _: Viewer) -> list[BaseRow]:
    return base_rows(request)


@router.get("/bases/{name}", response_model=BaseRow)
def get_base(name: str, request: Request, _: Viewer) -> BaseRow:
    for row in base_rows(request):
        if row.name == name:
            return row
    raise BaseNotFound(f"base {name!r} is not known")


@router.patch("/bases/{name}", response_model=BaseRow)
def set_limits(name: str, body: BaseLimits, request: Request, who: Operator) -> BaseRow:
    coordinator_of(request).controls.update_base(
        name, who.name, max_workers=body.max_workers, min_workers=body.min_workers
    )
    return get_base(name, request, who)


@router.post("/bases/{name}/pause", response_model=BaseRow)
def pause(name: str, request: Request, who: Operator) -> BaseRow:
    get_base(name, request, who)
    coordinator_of(request).controls.update_base(name, who.name, paused=True)
    return get_base(name, request, who)


@router.post("/bases/{name}/resume", response_model=BaseRow)
def resume(name: str, request: Request, who: Operator) -> BaseRow:
    get_base(name, request, who)
    coordinator_of(request).controls.update_base(name, who.name, paused=False)
    return get_base(name, request, who)


@router.get("/bases/{name}/windows", response_model=list[WindowOut])
def list_windows(name: str, request: Request, who: Viewer) -> list[WindowOut]:
    return get_base(name, request, who).windows


@router.post("/bases/{name}/windows", response_model=WindowOut, status_code=status.HTTP_201_CREATED)
def add_window(name: str, body: WindowIn, request: Request, who: Operator) -> WindowOut:
    get_base(name, request, who)
    record = coordinator_of(request).controls.add_window(
        name, who.name, weekdays=body.weekdays, start=body.start, end=body.end, max_workers=body.max_workers
    )
    return window_out(record)


@router.delete("/windows/{window_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_window(window_id: Annotated[int, Path(ge=1, le=INT64_MAX)], request: Request, who: Operator) -> None:
    coordinator_of(request).controls.remove_window(window_id, who.name)


def base_rows(request: Request) -> list[BaseRow]:
    coordinator = coordinator_of(request)
    # The bases' settings and limits now (a change just made shows), their pending work and ETA as the screen has them.
    bases = base_figures(coordinator.snapshot(), coordinator.now())
    screen = {b.name: b for b in coordinator.screen().bases}
    for name, base in bases.items():
        if (shown := screen.get(name)) is not None:
            bases[name] = replace(base, pending=shown.pending, eta_s=shown.eta_s, eta_at=shown.eta_at)
    return rows_of_bases(coordinator, bases.values())


def rows_of_bases(coordinator: Coordinator, bases: Iterable[BaseFigures]) -> list[BaseRow]:
    """The bases' figures with their windows, by name."""
    windows: dict[str, list[WindowOut]] = {}
    for record in coordinator.controls.windows():
        windows.setdefault(record.base, []).append(window_out(record))
    return [BaseRow(**asdict(b), windows=windows.get(b.name, [])) for b in sorted(bases, key=lambda b: b.name)]


def window_out(record: WindowRecord) -> WindowOut:
    return WindowOut(
        id=record.id,
        base=record.base,
        weekdays=sorted(record.weekdays),
        start=record.start,
        end=record.end,
        max_workers=record.max_workers,
    )
