"""Account settings by band: the defaults, a minor's own changes (each one recorded), and a parent's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.events import history
from bastion.minors.events import EventKind, LinkState, SettingChanged
from bastion.minors.family import STRICTNESS, Limits
from bastion.minors.interfaces import MINOR_BANDS, Audience, Band, SettingRefused
from bastion.minors.models import AccountSettings, AgeRecord, FamilyLink, MinorEvent
from bastion.minors.rules import DEFAULTS_FLOOR, BandDefaults
from bastion.minors.services import Minors, account_subject, log

#: Limits a parent may set that are also account settings, and how each maps onto one.
_LIMIT_SETTINGS = {"dm": "dm", "comments": "comments", "discoverable": "discoverable",
                   "screen_time_minutes": "screen_time_prompt_minutes", "quiet_hours": "quiet_hours"}


@dataclass(frozen=True)
class Effective:
    """An account's settings now, and for each one who set it: ``default``, ``account``, or ``parent:<id>``."""

    account_id: str
    band: Band
    defaults: BandDefaults
    settings: dict[str, Any]
    set_by: dict[str, str]
    restricted_mode: bool


def _band(session: Session, account_id: str) -> Band:
    row = session.get(AgeRecord, account_id)
    return Band(row.band) if row is not None else Band.UNKNOWN


def effective(m: Minors, session: Session, account_id: str) -> Effective:
    band = _band(session, account_id)
    defaults = m.rules.defaults_for(band)
    settings: dict[str, Any] = defaults.model_dump(mode="json")
    set_by = dict.fromkeys(settings, "default")
    own = session.get(AccountSettings, account_id)
    for name, value in (own.values if own else {}).items():
        settings[name], set_by[name] = value, "account"
    link = session.scalar(select(FamilyLink).where(FamilyLink.teen_id == account_id,
                                                   FamilyLink.state == LinkState.LINKED.value))
    restricted = False
    if link is not None and link.limits:
        limits = Limits.model_validate(link.limits)
        restricted = limits.restricted_mode
        for limit, setting in _LIMIT_SETTINGS.items():
            value = getattr(limits, limit)
            if value is not None and _tighter(setting, value, settings[setting]):
                settings[setting] = value.value if isinstance(value, Audience) else value
                set_by[setting] = f"parent:{link.parent_id}"
    return Effective(account_id, band, defaults, settings, set_by, restricted)


def _tighter(setting: str, value: Any, current: Any) -> bool:
    if setting in {"dm", "comments"}:
        return STRICTNESS[Audience(value)] >= STRICTNESS[Audience(current)]
    if setting == "screen_time_prompt_minutes":
        return current is None or value <= current
    if setting == "discoverable":
        return value is False
    return True  # quiet hours: the parent's, checked to cover the default when set


def change_settings(m: Minors, account_id: str, changes: dict[str, Any], *, actor: str) -> Effective:
    """The account holder's own changes: refused whole if one goes below the floor for the band or looser than a
    parent's limit; each change recorded with its before and after."""
    with m.db.write() as session:
        now = effective(m, session, account_id)
        merged = BandDefaults.model_validate({**now.settings, **changes})  # validates types and quiet hours
        problems = [f"{setting} = {_shown(getattr(merged, setting))} is below Bastion's floor for band {now.band}"
                    for bands, setting, forbidden in DEFAULTS_FLOOR
                    if now.band in bands and setting in changes and getattr(merged, setting) in forbidden]
        problems += [f"{name} is set by a parent ({now.set_by[name]}): only the parent can change it"
                     for name in changes if now.set_by.get(name, "").startswith("parent:")
                     and changes[name] != now.settings[name]]
        if problems:
            raise SettingRefused("; ".join(problems))
        row = session.get(AccountSettings, account_id)
        if row is None:
            row = AccountSettings(account_id=account_id, values={})
            session.add(row)
        values = dict(row.values)
        for name in sorted(changes):
            after = merged.model_dump(mode="json")[name]
            if after == now.settings[name]:
                continue
            values[name] = after
            if now.band in MINOR_BANDS:  # every change of a minor's setting is an event
                log(m, session, account_id, EventKind.SETTING_CHANGED, actor, SettingChanged(
                    setting=name, before=now.settings[name], after=after, band=now.band.value, by=actor))
        row.values, row.updated_at = values, m.clock.now()
        session.flush()
        return effective(m, session, account_id)


def _shown(value: Any) -> str:
    return value.value if isinstance(value, Audience) else str(value).lower()


def setting_changes(session: Session, account_id: str) -> list[MinorEvent]:
    return [e for e in history(session, MinorEvent, account_subject(account_id))
            if e.kind == EventKind.SETTING_CHANGED.value]
