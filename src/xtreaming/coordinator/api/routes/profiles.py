"""Profiles: topic pattern → settings of the queues it matches first, but for those set on a queue."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from xtreaming.coordinator.api.auth import Admin, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import INT64_MAX, ProfileIn, ProfileOut, settings_out
from xtreaming.coordinator.records import PROFILE_DEFAULTS

router = APIRouter(prefix="/api", tags=["profiles"])


@router.get("/profiles", response_model=list[ProfileOut])
def list_profiles(request: Request, _: Viewer) -> list[ProfileOut]:
    return [
        ProfileOut(id=p.id, position=p.position, pattern=p.pattern, settings=settings_out(p.settings))
        for p in coordinator_of(request).controls.profiles()
    ]


@router.post("/profiles", response_model=ProfileOut, status_code=status.HTTP_201_CREATED)
def add_profile(body: ProfileIn, request: Request, who: Admin) -> ProfileOut:
    """Settings for the queues whose topic matches ``pattern`` (first match wins), registered now or later;
    a setting overridden on a queue stays as it is."""
    settings = replace(PROFILE_DEFAULTS, **body.settings.changes())  # type: ignore[arg-type]
    profile = coordinator_of(request).controls.add_profile(body.pattern, settings, body.position, who.name)
    return ProfileOut(
        id=profile.id, position=profile.position, pattern=profile.pattern, settings=settings_out(settings)
    )


@router.delete("/profiles/{profile_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_profile(profile_id: Annotated[int, Path(ge=1, le=INT64_MAX)], request: Request, who: Admin) -> None:
    coordinator_of(request).controls.remove_profile(profile_id, who.name)
