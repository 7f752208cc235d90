"""Profiles (topic pattern → queue settings) and per-queue settings overrides."""

from __future__ import annotations

from dataclasses import asdict, replace

from fastapi import APIRouter, Request, status

from xtreaming.coordinator.api.auth import Admin, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import ProfileIn, ProfileOut, SettingsChange, SettingsOut
from xtreaming.coordinator.records import WorkSettings

router = APIRouter(prefix="/api", tags=["profiles"])


@router.get("/profiles", response_model=list[ProfileOut])
def list_profiles(request: Request, _: Viewer) -> list[ProfileOut]:
    return [
        ProfileOut(id=p.id, position=p.position, pattern=p.pattern, settings=settings_out(p.settings))
        for p in coordinator_of(request).store.list_profiles()
    ]


@router.post("/profiles", response_model=ProfileOut, status_code=status.HTTP_201_CREATED)
def add_profile(body: ProfileIn, request: Request, who: Admin) -> ProfileOut:
    """Settings for queues discovered from now on whose topic matches ``pattern`` (first match wins)."""
    settings = replace(WorkSettings(), **body.settings.changes())  # type: ignore[arg-type]
    profile = coordinator_of(request).add_profile(body.pattern, settings, body.position, who.name)
    return ProfileOut(
        id=profile.id, position=profile.position, pattern=profile.pattern, settings=settings_out(settings)
    )


@router.delete("/profiles/{profile_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_profile(profile_id: int, request: Request, who: Admin) -> None:
    coordinator_of(request).remove_profile(profile_id, who.name)


@router.get("/queues/{topic}/settings", response_model=SettingsOut)
def queue_settings(topic: str, request: Request, _: Viewer) -> SettingsOut:
    return settings_out(coordinator_of(request).queue(topic).record.settings)


@router.patch("/queues/{topic}/settings", response_model=SettingsOut)
def override_settings(topic: str, body: SettingsChange, request: Request, who: Admin) -> SettingsOut:
    """Override a queue's settings (from its profile); takes effect on the next task."""
    record = coordinator_of(request).configure_queue(topic, who.name, body.changes())
    return settings_out(record.settings)


def settings_out(settings: WorkSettings) -> SettingsOut:
    values = asdict(settings)
    values["command"] = list(settings.command)
    values["required_labels"] = dict(settings.required_labels)
    return SettingsOut(**values)
