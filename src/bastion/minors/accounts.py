"""Account settings by band: the defaults, a minor's own changes (each one recorded), and a parent's limits."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.events import history
from bastion.minors.events import EventKind, LinkState, SettingChanged
from bastion.minors.family import STRICTNESS, Limits, audience_rules, covers, deny_rule
from bastion.minors.interfaces import MINOR_BANDS, Action, Audience, Band, SettingRefused
from bastion.minors.models import AccountSettings, AgeRecord, FamilyLink, MinorEvent
from bastion.minors.rules import DEFAULTS_FLOOR, BandDefaults, Rule
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
        if now.band in MINOR_BANDS:  # a minor's compulsive-use protections only tighten
            problems += _loosened_time(now.defaults, merged, changes)
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


def _loosened_time(defaults: BandDefaults, merged: BandDefaults, changes: dict[str, Any]) -> list[str]:
    """A minor's screen-time prompt may come sooner and quiet hours grow, never the reverse."""
    found: list[str] = []
    prompt, mine = defaults.screen_time_prompt_minutes, merged.screen_time_prompt_minutes
    if "screen_time_prompt_minutes" in changes and prompt is not None and (mine is None or mine > prompt):
        found.append(f"screen_time_prompt_minutes = {mine} is more than the band's {prompt}: a minor may only "
                     "lower it")
    if "quiet_hours" in changes and defaults.quiet_hours and merged.quiet_hours \
            and not covers(merged.quiet_hours, defaults.quiet_hours):
        found.append(f"quiet_hours = {merged.quiet_hours} does not cover the band's {defaults.quiet_hours}: a minor "
                     "may only widen them")
    return found


# --- the account's own settings in the checks ----------------------------------------------------------------------


def _own(rule_id: str, actions: set[Action], explanation: str, **when: Any) -> Rule:
    return deny_rule(rule_id, actions, explanation, source="the account's own settings", **when)


@functools.lru_cache(maxsize=4096)
def _setting_rules(key: tuple[tuple[str, Any], ...], side: str) -> tuple[Rule, ...]:
    values = dict(key)
    rules: list[Rule] = []
    if side == "target":
        if values.get("dm") is not None:
            rules += audience_rules("setting-dm", Audience(values["dm"]), {Action.DM, Action.DM_MEDIA},
                                    "direct messages", by="This account has")
        if values.get("private_account") is True:
            rules.append(_own("setting-private-account", {Action.COMMENT, Action.REPLY, Action.DUET, Action.STITCH,
                                                           Action.DOWNLOAD},
                              "This account is private: only its followers can see and use its videos.",
                              follows=False))
        if values.get("comments") is not None:
            rules += audience_rules("setting-comments", Audience(values["comments"]), {Action.COMMENT, Action.REPLY},
                                    "comments", by="This account has")
        if values.get("downloads") is False:
            rules.append(_own("setting-downloads-off", {Action.DOWNLOAD},
                              "This account does not allow its videos to be downloaded."))
        if values.get("duet_stitch") is False:
            rules.append(_own("setting-duet-stitch-off", {Action.DUET, Action.STITCH},
                              "This account does not allow duets or stitches of its videos."))
        if values.get("discoverable") is False:
            rules.append(_own("setting-not-discoverable", {Action.SUGGEST},
                              "This account has chosen not to be suggested to others."))
    else:
        if values.get("live") is False:
            rules.append(_own("setting-live-off", {Action.LIVE}, "This account has turned live streaming off."))
        if values.get("gifts") is False:
            rules.append(_own("setting-gifts-off", {Action.LIVE_GIFT}, "This account has turned gifts off."))
    return tuple(rules)


def setting_rules(values: dict[str, Any], side: Literal["target", "actor"]) -> tuple[Rule, ...]:
    """The deny rules an account's own recorded settings add when it is the target, or the actor, of a check.

    Only deny rules, evaluated after the floor and before the platform's rules: a setting can stop what the rules
    allow, never allow what the floor or the rules deny (so a setting can never loosen anything).
    """
    return _setting_rules(tuple(sorted((k, v) for k, v in values.items() if not isinstance(v, (list, dict)))), side)


# --- quiet hours and screen time -----------------------------------------------------------------------------------


def in_hours(hours: str, minute: int) -> bool:
    """Whether ``minute`` of the day (0-1439) falls within ``HH:MM-HH:MM`` (which may run past midnight)."""
    start, end = (int(h) * 60 + int(m) for h, m in (part.split(":") for part in hours.split("-")))
    if start == end:
        return True
    return start <= minute < end if start < end else minute >= start or minute < end


def local_time(now: dt.datetime, utc_offset_minutes: int) -> dt.datetime:
    return now.astimezone(dt.timezone(dt.timedelta(minutes=utc_offset_minutes)))


def quiet_hours_in_force(band_default: str | None, own: dict[str, Any], limits: dict[str, Any]
                         ) -> list[tuple[str, str]]:
    """Every quiet-hours window in force for an account, with who set it: the band's default, the account's own,
    a parent's. A notification is held back if any holds (each only adds quiet time)."""
    found = []
    if band_default:
        found.append(("default", band_default))
    if own.get("quiet_hours"):
        found.append(("account", str(own["quiet_hours"])))
    if limits.get("quiet_hours"):
        found.append(("parent", str(limits["quiet_hours"])))
    return found


def quiet_rule(windows: list[tuple[str, str]], at: dt.datetime) -> Rule | None:
    """The deny rule for a notification at local time ``at``, or None outside every window."""
    minute = at.hour * 60 + at.minute
    for who, hours in windows:
        if in_hours(hours, minute):
            rule_id = {"default": "quiet-hours", "account": "setting-quiet-hours", "parent": "family-quiet-hours"}[who]
            return _own(rule_id, {Action.NOTIFY},
                        f"Notifications are paused during quiet hours ({hours}, the account's local time).")
    return None


@dataclass(frozen=True)
class ScreenTime:
    """What the app should do now, given the minutes the platform says the account used today."""

    account_id: str
    band: Band
    used_minutes: int
    limit_minutes: int | None
    remaining_minutes: int | None
    set_by: str
    #: ``none``; ``prompt`` (the band's or the account's own daily prompt: a reminder the user can dismiss);
    #: ``stop`` (a parent's daily limit: the app ends the session until the next local day).
    action: Literal["none", "prompt", "stop"]
    local_time: dt.datetime
    quiet_hours: list[tuple[str, str]]
    in_quiet_hours: bool


def screen_time(m: Minors, session: Session, account_id: str, used_minutes: int, utc_offset_minutes: int
                ) -> ScreenTime:
    e = effective(m, session, account_id)
    limit = e.settings.get("screen_time_prompt_minutes")
    set_by = e.set_by.get("screen_time_prompt_minutes", "default")
    action: Literal["none", "prompt", "stop"] = "none"
    if limit is not None and used_minutes >= limit:
        action = "stop" if set_by.startswith("parent:") else "prompt"
    own = session.get(AccountSettings, account_id)
    link = session.scalar(select(FamilyLink).where(FamilyLink.teen_id == account_id,
                                                   FamilyLink.state == LinkState.LINKED.value))
    windows = quiet_hours_in_force(e.defaults.quiet_hours, dict(own.values) if own else {},
                                   dict(link.limits) if link is not None and link.limits else {})
    at = local_time(m.clock.now(), utc_offset_minutes)
    return ScreenTime(account_id, e.band, used_minutes, limit, max(limit - used_minutes, 0) if limit else None,
                      set_by if limit is not None else "", action, at, windows,
                      quiet_rule(windows, at) is not None)
