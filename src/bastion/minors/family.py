"""Family pairing: a parent's account and a teen's link when both confirm (a code shown on the parent's account,
entered on the teen's). The parent's limits only tighten the teen's rules; the parent never reads messages.

Limits become deny rules evaluated after the floor and before the platform's rules (``rules.RuleSet.decide``), so a
limit can stop something the file allows and can never allow something the floor or the file denies.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bastion.minors.events import EventKind, FamilyChange, LinkChange, LinkState, next_link_state
from bastion.minors.interfaces import Action, Audience, Band, Decision, LinkNotFound, PairingError, SettingRefused
from bastion.minors.models import AgeRecord, FamilyLink
from bastion.minors.rules import ALL_BANDS, BandDefaults, Rule
from bastion.minors.services import Minors, log, notify

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off one screen, typed on another
CODE_LENGTH = 8
CODE_TTL = dt.timedelta(minutes=15)
TEEN_BANDS = frozenset({Band.B13_15, Band.B16_17})
_HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
#: How closed each audience is: a parent may move a setting only to the right.
STRICTNESS = {Audience.EVERYONE: 0, Audience.FOLLOWERS: 1, Audience.FRIENDS: 2, Audience.NOBODY: 3}


class Limits(BaseModel):
    """What a parent sets. Left out: the teen's own setting (itself no looser than the band's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    screen_time_minutes: int | None = Field(default=None, ge=1, le=1440)
    quiet_hours: str | None = Field(default=None, pattern=_HOURS, description="HH:MM-HH:MM, no notifications")
    restricted_mode: bool = Field(default=False, description="hide age-restricted and borderline content")
    dm: Audience | None = Field(default=None, description="who may send the teen direct messages")
    comments: Audience | None = Field(default=None, description="who may comment on the teen's content")
    search: bool | None = Field(default=None, description="may others find the teen in search")
    discoverable: bool | None = Field(default=None, description="may the teen be suggested to others")


def _minutes(hours: str) -> set[int]:
    start, end = (int(h) * 60 + int(m) for h, m in (part.split(":") for part in hours.split("-")))
    span = (end - start) % 1440 or 1440
    return {(start + i) % 1440 for i in range(span)}


def loosening(limits: Limits, defaults: BandDefaults) -> list[str]:
    """Each limit that would loosen the teen's defaults instead of tightening them."""
    found: list[str] = []
    for name in ("dm", "comments"):
        value: Audience | None = getattr(limits, name)
        default: Audience = getattr(defaults, name)
        if value is not None and STRICTNESS[value] < STRICTNESS[default]:
            found.append(f"{name} = {value.value} is looser than the teen's default ({default.value})")
    prompt = defaults.screen_time_prompt_minutes
    if limits.screen_time_minutes is not None and prompt is not None and limits.screen_time_minutes > prompt:
        found.append(f"screen_time_minutes = {limits.screen_time_minutes} is more than the default ({prompt})")
    if limits.quiet_hours and defaults.quiet_hours and not covers(limits.quiet_hours, defaults.quiet_hours):
        found.append(f"quiet_hours = {limits.quiet_hours} does not cover the default ({defaults.quiet_hours})")
    for name in ("search", "discoverable"):
        if getattr(limits, name) is True and not defaults.discoverable:
            found.append(f"{name} = true is looser than the teen's default (not discoverable)")
    return found


def covers(hours: str, other: str) -> bool:
    """Whether the window ``hours`` holds every minute of ``other``."""
    return _minutes(hours) >= _minutes(other)


def deny_rule(rule_id: str, actions: set[Action], explanation: str, *, source: str = "family pairing",
              **when: Any) -> Rule:
    """A deny rule for any bands (limits and settings are an account's own, whatever its band)."""
    return Rule(id=rule_id, actions=frozenset(actions), actors=ALL_BANDS, targets=frozenset({*ALL_BANDS, None}),
                decision=Decision.DENY, explanation=explanation, source=source, **when)



def audience_rules(prefix: str, audience: Audience, actions: set[Action], what: str,
                   by: str = "A parent has") -> list[Rule]:
    """Who may reach the account by ``actions``: friends (mutual follows), followers (the actor follows it), nobody.

    "Followers" are the target's followers: the actor follows the target (``follows``)."""
    source = "family pairing" if by.startswith("A parent") else "the account's own settings"
    if audience is Audience.NOBODY:
        return [deny_rule(f"{prefix}-nobody", actions, f"{by} turned off {what} for this account.", source=source)]
    if audience is Audience.FRIENDS:
        return [deny_rule(f"{prefix}-friends", actions, f"{by} limited {what} for this account to friends.",
                          source=source, mutual=False)]
    if audience is Audience.FOLLOWERS:
        return [deny_rule(f"{prefix}-followers", actions, f"{by} limited {what} for this account to its followers.",
                          source=source, follows=False)]
    return []



@functools.lru_cache(maxsize=4096)
def _rules_for(key: tuple[tuple[str, Any], ...], side: str) -> tuple[Rule, ...]:
    limits = Limits.model_validate(dict(key))
    rules: list[Rule] = []
    if side == "target":
        if limits.dm is not None:
            rules += audience_rules("family-dm", limits.dm, {Action.DM, Action.DM_MEDIA}, "direct messages")
        if limits.comments is not None:
            rules += audience_rules("family-comments", limits.comments, {Action.COMMENT, Action.REPLY}, "comments")
        if limits.discoverable is False:
            rules.append(deny_rule("family-not-suggested", {Action.SUGGEST},
                               "A parent has turned off suggesting this account to others."))
    elif limits.restricted_mode:
        rules.append(deny_rule("family-restricted-mode", {Action.VIEW}, "Restricted mode is on for this account.",
                           age_restricted=True))
        rules.append(deny_rule("family-restricted-mode-borderline", {Action.VIEW},
                           "Restricted mode is on for this account.", borderline=True))
    return tuple(rules)


def limit_rules(limits: dict[str, Any], side: Literal["target", "actor"]) -> tuple[Rule, ...]:
    """The deny rules a teen's limits add when the teen is the target, or the actor, of a check."""
    return _rules_for(tuple(sorted((k, v) for k, v in limits.items() if v is not None)), side)


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def _band(session: Session, account_id: str) -> Band:
    row = session.get(AgeRecord, account_id)
    return Band(row.band) if row is not None else Band.UNKNOWN


def offer(m: Minors, parent_id: str, *, actor: str) -> tuple[FamilyLink, str]:
    """A pairing code to show on the parent's account (returned once, stored only as a digest)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = m.clock.now()
    with m.db.write() as session:
        if _band(session, parent_id) is not Band.ADULT:
            raise PairingError("the parent's account must have an age of 18 or more recorded "
                               "(PUT /v1/accounts/{id}/age) before it can pair")
        link = FamilyLink(parent_id=parent_id, teen_id=None, code_digest=_digest(code), code_expires_at=now + CODE_TTL,
                          state=LinkState.PENDING.value, limits={}, created_at=now, updated_at=now)
        session.add(link)
        session.flush()
        log(m, session, parent_id, EventKind.PAIRING_OFFERED, actor,
            FamilyChange(link_id=link.id, parent_id=parent_id, teen_id=None, by=parent_id))
        return link, code


def confirm(m: Minors, code: str, teen_id: str, *, actor: str) -> FamilyLink:
    """The code entered on the teen's account: both have confirmed, the accounts are linked."""
    now = m.clock.now()
    with m.db.write() as session:
        link = session.scalar(select(FamilyLink).where(FamilyLink.code_digest == _digest(code)))
        if link is None or link.state != LinkState.PENDING.value or link.code_expires_at < now:
            raise PairingError("the pairing code is unknown or has expired: show a new one on the parent's account")
        if link.parent_id == teen_id:
            raise PairingError("an account cannot pair with itself")
        if _band(session, teen_id) not in TEEN_BANDS:
            raise PairingError("the teen's account must have an age of 13 to 17 recorded before it can pair")
        taken = session.scalar(select(FamilyLink.id).where(FamilyLink.teen_id == teen_id,
                                                           FamilyLink.state == LinkState.LINKED.value))
        if taken is not None:
            raise PairingError("this teen's account is already linked to a parent: unlink it first")
        link.state = next_link_state(LinkState(link.state), LinkChange.CONFIRM).value
        link.teen_id, link.code_digest, link.updated_at = teen_id, None, now
        _changed(m, session, link, EventKind.LINKED, actor, by=teen_id)
        return link


def set_limits(m: Minors, link_id: int, parent_id: str, limits: Limits, *, actor: str, defaults: BandDefaults
               ) -> FamilyLink:
    """The parent's limits, refused whole if any would loosen the teen's defaults."""
    with m.db.write() as session:
        link = _link(session, link_id)
        if link.parent_id != parent_id:
            raise PairingError("only the linked parent's account sets limits")
        found = loosening(limits, defaults)
        if found:
            raise SettingRefused("a parent's limits can only tighten the teen's settings: " + "; ".join(found))
        link.state = next_link_state(LinkState(link.state), LinkChange.SET_LIMITS).value
        link.limits = limits.model_dump(mode="json", exclude_defaults=True)
        link.updated_at = m.clock.now()
        _changed(m, session, link, EventKind.LIMITS_SET, actor, by=parent_id)
        return link


def unlink(m: Minors, link_id: int, account_id: str, *, actor: str) -> FamilyLink:
    """Either account may unlink; both are told (one webhook each)."""
    with m.db.write() as session:
        link = _link(session, link_id)
        if account_id not in {link.parent_id, link.teen_id}:
            raise PairingError("only the parent's or the teen's account may unlink")
        link.state = next_link_state(LinkState(link.state), LinkChange.UNLINK).value
        link.code_digest, link.updated_at = None, m.clock.now()
        _changed(m, session, link, EventKind.UNLINKED, actor, by=account_id)
        return link


def _changed(m: Minors, session: Session, link: FamilyLink, kind: EventKind, actor: str, *, by: str) -> None:
    """An event on both accounts and a webhook for each, so the platform tells both people."""
    change = FamilyChange(link_id=link.id, parent_id=link.parent_id, teen_id=link.teen_id, limits=link.limits, by=by)
    for account_id in (link.parent_id, link.teen_id):
        if account_id is None:
            continue
        event = log(m, session, account_id, kind, actor, change)
        session.flush()
        notify(m, session, kind, f"{kind.value}:{link.id}:{event.id}",
               {"notify": account_id, **change.model_dump(mode="json")})


def _link(session: Session, link_id: int) -> FamilyLink:
    link = session.get(FamilyLink, link_id)
    if link is None:
        raise LinkNotFound(f"no family link {link_id}")
    return link


def links_of(session: Session, account_id: str) -> list[FamilyLink]:
    return list(session.scalars(select(FamilyLink).where(
        or_(FamilyLink.parent_id == account_id, FamilyLink.teen_id == account_id)).order_by(FamilyLink.id)))


def all_links(session: Session) -> list[FamilyLink]:
    return list(session.scalars(select(FamilyLink).where(FamilyLink.state != LinkState.PENDING.value)
                                .order_by(FamilyLink.id.desc()).limit(500)))


__all__ = ["Limits", "confirm", "limit_rules", "links_of", "offer", "set_limits", "unlink"]
