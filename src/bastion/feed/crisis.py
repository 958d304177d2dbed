"""Crisis mode: a crisis declared under a protocol (the EU Crisis Protocol, a GIFCT Content Incident Protocol level,
or internal), its rules while it is active, and every step as an event.

While a crisis is active:

- livestreams from its countries are kept out of feeds (``view.py``, reason ``crisis_exclusion``);
- uploads are judged with a derived policy (``crisis_policy``): review rules of its categories that rest on a
  classifier score review at a lower score (``review_threshold_factor``), and any match in its bank blocks at once;
- cases of its categories open with a higher severity (``severity_boost``), so their queues are served first;
- its known material, and perpetrator content a moderator confirmed, go into its bank, so re-uploads are blocked at
  intake in every process within a refresh interval (the matcher follows the bank change log);
- the confirmed perpetrator content's hashes are shared with the exchanges an admin named for it (``share_with``),
  through the outbox (``HashSharing``, implemented by the exchanges domain); each outcome is a timeline event;
- imminent threats to life go to the authorities through the Art. 14(5) path (``orders/services.py``).

Moderation never imports this: ``CrisisAdjuster`` satisfies ``moderation.kernel.IntakeAdjuster``, wired in
``web/app.py``. The state of a crisis moves only through ``next_state`` (tested as a table).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.core.validators import country_code
from bastion.feed.interfaces import (
    CrisisConflict,
    CrisisForbidden,
    CrisisNotFound,
    HashSharing,
    InvalidCrisis,
    SharedHash,
)
from bastion.feed.models import Crisis, CrisisEvent
from bastion.hashing import registry
from bastion.hashing.interfaces import MediaKind
from bastion.hashing.pdq import PdqSignal
from bastion.hashing.services import hash_path
from bastion.hashing.video_pdq import VideoPdqSignal
from bastion.matching import services as bank_services
from bastion.matching.interfaces import BankExists, DuplicateEntry, InvalidEntry
from bastion.matching.models import Bank
from bastion.moderation import curation
from bastion.moderation import queries as moderated
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import Action, BankMatch, Category, Condition, Mode, Policy, Rule, Verdict


class CrisisProtocol(enum.StrEnum):
    """Under what a crisis is declared. Values are storage keys: never rename one."""

    EU_CRISIS_PROTOCOL = "eu_crisis_protocol"
    GIFCT_CIP = "gifct_cip"  # GIFCT Content Incident Protocol (with its level)
    INTERNAL = "internal"


class CrisisState(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class CrisisChange(enum.StrEnum):
    ACTIVATE = "activate"
    BANK_MATERIAL = "bank_material"
    BANK_PERPETRATOR_CONTENT = "bank_perpetrator_content"
    REPORT_THREAT = "report_threat"
    RECORD_SHARE = "record_share"
    NOTE = "note"
    DEACTIVATE = "deactivate"


class InvalidCrisisTransition(InvalidCrisis):
    status, title = 409, "Crisis conflict"


_ACTIVE = frozenset({CrisisState.ACTIVE})
#: change -> (states it may start from; None means a new crisis), resulting state (None: unchanged)
_TRANSITIONS: dict[CrisisChange, tuple[frozenset[CrisisState | None], CrisisState | None]] = {
    CrisisChange.ACTIVATE: (frozenset({None}), CrisisState.ACTIVE),
    CrisisChange.BANK_MATERIAL: (frozenset(_ACTIVE), None),
    CrisisChange.BANK_PERPETRATOR_CONTENT: (frozenset(_ACTIVE), None),
    CrisisChange.REPORT_THREAT: (frozenset(_ACTIVE), None),
    # an exchange's answer to a hash shared while it was active may come after it ended
    CrisisChange.RECORD_SHARE: (frozenset({CrisisState.ACTIVE, CrisisState.ENDED}), None),
    CrisisChange.NOTE: (frozenset({CrisisState.ACTIVE, CrisisState.ENDED}), None),  # a post-mortem note too
    CrisisChange.DEACTIVATE: (frozenset(_ACTIVE), CrisisState.ENDED),
}


def next_state(current: CrisisState | None, change: CrisisChange) -> CrisisState:
    """The one place a crisis's state moves; a change its state does not allow is refused (409)."""
    allowed, result = _TRANSITIONS[change]
    if current not in allowed:
        raise InvalidCrisisTransition(
            f"cannot {change.value.replace('_', ' ')} a crisis that is {current.value if current else 'new'}")
    assert result is not None or current is not None
    return result if result is not None else current  # type: ignore[return-value]


class CrisisEventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    ACTIVATED = "crisis.activated"
    MATERIAL_BANKED = "crisis.material_banked"
    PERPETRATOR_BANKED = "crisis.perpetrator_banked"
    THREAT_REPORTED = "crisis.threat_reported"
    HASH_SHARED = "crisis.hash_shared"
    NOTE = "crisis.note"
    DEACTIVATED = "crisis.deactivated"


class Activated(BaseModel):
    protocol: str
    reference: str
    level: str = ""
    title: str = ""
    countries: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    bank: str
    share_with: list[str] = Field(default_factory=list)
    #: The rules in force, in words (for the timeline and the transparency report).
    rules: list[str] = Field(default_factory=list)


class MaterialBanked(BaseModel):
    entry_ids: list[int] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class PerpetratorBanked(BaseModel):
    content_id: str
    entry_ids: list[int] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    #: What was queued to each exchange the crisis shares with, in words.
    shared: list[str] = Field(default_factory=list)


class HashShared(BaseModel):
    """An exchange's answer to one shared hash: the id it gave, or the error that ended the attempt for good."""

    exchange: str
    signal_type: str
    value: str
    accepted_id: str = ""
    error: str = ""
    http_status: int | None = None


class ThreatReported(BaseModel):
    content_id: str
    sent_to: list[str] = Field(default_factory=list)


class Note(BaseModel):
    text: str


class Deactivated(BaseModel):
    note: str = ""


CHANGE_OF: dict[CrisisEventKind, CrisisChange] = {
    CrisisEventKind.ACTIVATED: CrisisChange.ACTIVATE, CrisisEventKind.MATERIAL_BANKED: CrisisChange.BANK_MATERIAL,
    CrisisEventKind.PERPETRATOR_BANKED: CrisisChange.BANK_PERPETRATOR_CONTENT,
    CrisisEventKind.THREAT_REPORTED: CrisisChange.REPORT_THREAT, CrisisEventKind.NOTE: CrisisChange.NOTE,
    CrisisEventKind.HASH_SHARED: CrisisChange.RECORD_SHARE,
    CrisisEventKind.DEACTIVATED: CrisisChange.DEACTIVATE,
}


# --- what is in force ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveCrisis:
    """An active crisis's rules, as every process keeps them in memory (``view.EligibilityView.crises``)."""

    id: int
    reference: str
    countries: tuple[str, ...]
    categories: tuple[str, ...]
    bank: str
    exclude_live: bool
    review_threshold_factor: float
    severity_boost: int
    bank_confirmed: bool = False
    share_with: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Crisis) -> ActiveCrisis:
        return cls(row.id, row.reference, tuple(row.countries), tuple(row.categories), row.bank, row.exclude_live,
                   row.review_threshold_factor, row.severity_boost, bool(row.bank_confirmed),
                   tuple(row.share_with or ()))


def active_crises(session: Session) -> list[ActiveCrisis]:
    return [ActiveCrisis.from_row(c) for c in session.scalars(
        select(Crisis).where(Crisis.state == CrisisState.ACTIVE.value).order_by(Crisis.id))]


def rules_in_words(crisis: ActiveCrisis) -> list[str]:
    words = []
    if crisis.exclude_live and crisis.countries:
        words.append(f"livestreams from {', '.join(crisis.countries)} are kept out of feeds")
    words.append(f"review thresholds of {', '.join(crisis.categories)} classifiers lowered to "
                 f"{crisis.review_threshold_factor:g} of their value")
    if crisis.severity_boost:
        words.append(f"cases of {', '.join(crisis.categories)} open {crisis.severity_boost} severity higher")
    if crisis.bank_confirmed:
        words.append(f"removals moderators confirm in {', '.join(crisis.categories)} are banked at once")
    if crisis.share_with:
        words.append(f"confirmed perpetrator content is shared with {', '.join(crisis.share_with)}")
    words.append(f"any match in bank {crisis.bank} is blocked at upload")
    return words


def crisis_policy(policy: Policy, crises: Sequence[ActiveCrisis]) -> Policy:
    """The policy uploads are judged with while ``crises`` are active. Pure: the same inputs give the same policy.

    Review rules of a crisis category that rest on a classifier get the lowest factor's threshold; each crisis adds a
    rule that blocks and removes any match in its bank (first: a crisis decides before the file's own rules tie).
    The version names the crises, so every decision made under it can be traced (``name@version+crisis-1``).
    """
    if not crises:
        return policy
    factor: dict[str, float] = {}
    for crisis in crises:
        for category in crisis.categories:
            factor[category] = min(factor.get(category, 1.0), crisis.review_threshold_factor)
    rules: list[Rule] = []
    for crisis in crises:
        rules.append(Rule(name=f"crisis-{crisis.id}-known-material", category=Category(crisis.categories[0]),
                          when=Condition(bank_match=BankMatch(banks=[crisis.bank])), verdict=Verdict.BLOCK,
                          actions=[Action.REMOVE], severity=5))
    for rule in policy.rules:
        lowered = factor.get(rule.category.value)
        classifier = rule.when.classifier
        if lowered is not None and lowered < 1.0 and classifier is not None and rule.verdict is Verdict.REVIEW \
                and rule.mode is Mode.ENFORCE:
            classifier = classifier.model_copy(update={"min_score": round(classifier.min_score * lowered, 4)})
            rule = rule.model_copy(update={"when": rule.when.model_copy(update={"classifier": classifier})})
        rules.append(rule)
    suffix = "+".join(f"crisis-{c.id}" for c in crises)
    return policy.model_copy(update={"rules": rules, "version": f"{policy.version}+{suffix}"})


class CrisisAdjuster:
    """``moderation.kernel.IntakeAdjuster`` for the crises in force: the derived policy is built once per policy and
    set of crises, so an upload pays a tuple comparison.

    No lock: the cache is one tuple, replaced whole (an atomic assignment), and deriving is pure, so two uploads that
    race after a change at worst both derive the same policy once.
    """

    def __init__(self) -> None:
        self.crises: tuple[ActiveCrisis, ...] = ()
        self._cache: tuple[Policy, tuple[ActiveCrisis, ...], Policy] | None = None

    def update(self, crises: tuple[ActiveCrisis, ...]) -> None:
        self.crises = crises

    def policy(self, policy: Policy) -> Policy:
        crises = self.crises
        if not crises:
            return policy
        cached = self._cache
        if cached is not None and cached[0] is policy and cached[1] == crises:
            return cached[2]
        derived = crisis_policy(policy, crises)
        self._cache = (policy, crises, derived)
        return derived

    def severity(self, category: str, severity: int) -> int:
        boost = max((c.severity_boost for c in self.crises if category in c.categories), default=0)
        return severity + boost


# --- the service ----------------------------------------------------------------------------------------------


#: The categories a crisis may be about (never child sexual abuse material: that has its own restricted banks).
CRISIS_CATEGORIES = frozenset(Category) - {Category.CSAM}
DEFAULT_CATEGORIES = (Category.TERRORIST_CONTENT.value, Category.VIOLENT_EXTREMISM.value)


@dataclass(frozen=True)
class Crises:
    """What crisis services need: the database, the clock, moderation (its banks' curation) and, where exchanges
    are configured, the sharing of hashes with them (none: a crisis naming exchanges is refused)."""

    db: Database
    clock: Clock
    mod: Moderation
    sharing: HashSharing | None = None


@dataclass(frozen=True)
class NewCrisis:
    protocol: CrisisProtocol
    reference: str
    countries: Sequence[str]
    level: str = ""
    title: str = ""
    categories: Sequence[str] = DEFAULT_CATEGORIES
    #: Known material: ``(signal type, value)`` pairs, banked at once.
    material: Sequence[tuple[str, str]] = ()
    exclude_live: bool = True
    review_threshold_factor: float = 0.8
    severity_boost: int = 1
    #: Bank every removal a moderator confirms in its categories while it lasts (as perpetrator content).
    bank_confirmed: bool = True
    #: The exchanges its confirmed perpetrator content is shared with (admins only).
    share_with: Sequence[str] = ()


def crisis_subject(crisis_id: int) -> str:
    return f"crisis:{crisis_id}"


def bank_name_for(reference: str) -> str:
    """The crisis bank's name, from its reference: ``ECP-2026/03`` gives ``CRISIS_ECP_2026_03``."""
    return ("CRISIS_" + re.sub(r"[^A-Z0-9]+", "_", reference.upper()).strip("_"))[:100]


def _log(c: Crises, session: Session, crisis: Crisis, kind: CrisisEventKind, actor: str, data: BaseModel) -> None:
    state = next_state(CrisisState(crisis.state) if crisis.state else None, CHANGE_OF[kind])
    crisis.state = state.value
    event_log.record(session, CrisisEvent, subject=crisis_subject(crisis.id), kind=kind, actor=actor,
                     at=c.clock.now(), data=data)


def _checked(new: NewCrisis) -> NewCrisis:
    reference = new.reference.strip()
    if not 1 <= len(reference) <= 200:
        raise InvalidCrisis("reference: 1 to 200 characters (the protocol's reference for the crisis)")
    if new.protocol is CrisisProtocol.GIFCT_CIP and not new.level.strip():
        raise InvalidCrisis("level: a GIFCT Content Incident Protocol crisis needs its level")
    if len(new.level) > 32 or len(new.title) > 2000:
        raise InvalidCrisis("level: at most 32 characters; title: at most 2000")
    try:
        countries = sorted({country_code(c) for c in new.countries})
    except ValueError as exc:
        raise InvalidCrisis(f"countries: {exc}") from None
    categories = list(dict.fromkeys(new.categories))
    wrong = [c for c in categories if c not in {x.value for x in CRISIS_CATEGORIES}]
    if not categories or wrong:
        raise InvalidCrisis(f"categories: one or more of {', '.join(sorted(CRISIS_CATEGORIES))}"
                            + (f"; not {', '.join(wrong)}" if wrong else ""))
    if not 0.1 <= new.review_threshold_factor <= 1.0:
        raise InvalidCrisis("review_threshold_factor: between 0.1 and 1 (1 leaves thresholds as they are)")
    if not 0 <= new.severity_boost <= 4:
        raise InvalidCrisis("severity_boost: between 0 and 4")
    if len(new.share_with) > 20:
        raise InvalidCrisis("share_with: at most 20 exchanges")
    return NewCrisis(new.protocol, reference, countries, new.level.strip(), new.title.strip(), categories,
                     list(new.material), new.exclude_live, new.review_threshold_factor, new.severity_boost,
                     new.bank_confirmed, list(dict.fromkeys(n.strip() for n in new.share_with if n.strip())))


def activate(c: Crises, new: NewCrisis, *, actor: Principal) -> Crisis:
    """Declare a crisis: its rules apply in every process within a refresh interval, its known material is banked.

    Everything is checked first (the settings, every hash of the known material, the bank's name, the exchanges to
    share with); then one transaction: the bank when it is new, the crisis, its ``crisis.activated`` event, the
    known material's entries (with their change-log rows) and a ``crisis.material_banked`` event, or nothing. A
    refused activation leaves nothing behind, not even an empty bank.
    """
    new = _checked(new)
    bank_name = bank_name_for(new.reference)
    for signal_type, value in new.material:
        try:
            bank_services.NewEntry.parse(signal_type, value, new.categories[0])
        except InvalidEntry as exc:
            raise InvalidCrisis(f"material: {exc}") from None
    if new.share_with:
        if actor.role not in roles.EXCHANGES_CONFIGURE:
            raise CrisisForbidden("share_with: only the administrators of the exchanges may name them")
        if c.sharing is None:
            raise InvalidCrisis("share_with: no exchanges are configured in this process")
    try:
        with c.db.write() as session:
            if new.share_with:
                assert c.sharing is not None
                c.sharing.check_targets(session, new.share_with)
            bank = session.scalar(select(Bank).where(Bank.name == bank_name))
            ours = session.scalar(select(Crisis.id).where(Crisis.bank == bank_name).limit(1)) is not None
            # A crisis banks into a bank it made (or an earlier crisis of the same reference made), never into one
            # that happens to share the name: a restricted bank would take terrorist content into child-safety
            # material, and its name would show to analysts. The refusal does not say which kind of bank it is.
            if bank is not None and (bank.restricted or not ours):
                raise InvalidCrisis(f"reference: a bank named {bank_name} exists and was not made by a crisis; "
                                    "choose another reference")
            if session.scalar(select(Crisis.id).where(Crisis.reference == new.reference,
                                                      Crisis.state == CrisisState.ACTIVE.value)) is not None:
                raise CrisisConflict(f"a crisis with reference {new.reference!r} is active already")
            if bank is None:
                bank_services.create_bank_in(c.db, session, bank_name, actor=actor, dihedral=True, clock=c.clock,
                                             description=f"crisis {new.reference}: known material and perpetrator "
                                                         "content")
            now = c.clock.now()
            crisis = Crisis(protocol=new.protocol.value, reference=new.reference, level=new.level, title=new.title,
                            countries=list(new.countries), categories=list(new.categories), bank=bank_name,
                            exclude_live=new.exclude_live, review_threshold_factor=new.review_threshold_factor,
                            severity_boost=new.severity_boost, bank_confirmed=new.bank_confirmed,
                            share_with=list(new.share_with), decisions_seen=moderated.last_event_id(session),
                            state="", activated_by=actor.actor, activated_at=now)
            session.add(crisis)
            session.flush()
            _log(c, session, crisis, CrisisEventKind.ACTIVATED, actor.actor, Activated(
                protocol=crisis.protocol, reference=crisis.reference, level=crisis.level, title=crisis.title,
                countries=crisis.countries, categories=crisis.categories, bank=bank_name,
                share_with=list(new.share_with), rules=rules_in_words(ActiveCrisis.from_row(crisis))))
            if new.material:
                added, skipped = _bank_values(c, session, crisis, new.material, actor, strict=True)
                _log(c, session, crisis, CrisisEventKind.MATERIAL_BANKED, actor.actor,
                     MaterialBanked(entry_ids=added, skipped=skipped))
            return crisis
    except (IntegrityError, BankExists):  # a concurrent activation of the same reference made the bank first
        raise CrisisConflict(f"a crisis with reference {new.reference!r} is being activated already") from None


def _bank_values(c: Crises, session: Session, crisis: Crisis, material: Sequence[tuple[str, str]],
                 actor: Principal, *, strict: bool, source: str = "") -> tuple[list[int], list[str]]:
    bank = bank_services.get_bank(session, crisis.bank)
    added: list[int] = []
    skipped: list[str] = []
    for signal_type, value in material:
        try:
            entry = bank_services.NewEntry.parse(signal_type, value, crisis.categories[0],
                                                 source=source or f"crisis:{crisis.reference}")
            added.append(bank_services.add_entry_in(c.db, session, bank, entry, actor=actor, clock=c.clock).id)
        except DuplicateEntry:
            skipped.append(f"{signal_type}: already in {bank.name}")
        except InvalidEntry as exc:
            if strict:
                raise InvalidCrisis(f"material: {exc}") from None
            skipped.append(f"{signal_type}: {exc}")
    return added, skipped


#: Border crops banked beside an image of known material (fractions cut from each side): PDQ moves some 16 bits per
#: 1% cropped, so a re-upload cropped by up to about 9% stays within the threshold of one of them (bench/crisis.py).
CROP_STEPS = (0.02, 0.04, 0.06, 0.08, 0.10)


def material_from_file(path: Path) -> list[tuple[str, str]]:
    """The hashes to bank for a file of known material: its matchable signals, and those of its edits a surge
    would make. For an image, the PDQ of its border crops (mirrored copies need nothing: the crisis bank is
    dihedral, and PDQ hashes the upload's flips). For a video, the ``video_pdq`` of its mirror, its border crops
    and their mirrors (``video_pdq`` has no flipped variants): each is a re-encode, about a second for every
    8 seconds of 320x240 video, so a long video takes a while to bank."""
    signals = hash_path(path)
    if signals.kind not in (MediaKind.IMAGE, MediaKind.VIDEO) or signals.errors:
        raise InvalidCrisis(f"material: the file is no readable image or video ({'; '.join(signals.errors)})")
    found = [(s.signal_type, s.value) for s in signals.signals if registry.get(s.signal_type).matchable(s)]
    if signals.kind is MediaKind.IMAGE:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        w, h = image.size
        with tempfile.TemporaryDirectory(prefix="bastion-crisis-") as tmp:
            for step in CROP_STEPS:
                dx, dy = int(w * step), int(h * step)
                cropped = Path(tmp) / f"crop-{step}.png"
                image.crop((dx, dy, w - dx, h - dy)).save(cropped)
                found += [(s.signal_type, s.value) for s in hash_path(cropped).signals
                          if s.signal_type == PdqSignal.name and registry.get(s.signal_type).matchable(s)]
    elif signals.kind is MediaKind.VIDEO:
        with tempfile.TemporaryDirectory(prefix="bastion-crisis-") as tmp:
            edits = [(0.0, True)] + [(step, mirror) for step in VIDEO_CROP_STEPS for mirror in (False, True)]
            for step, mirror in edits:
                edited = _edit_video(path, Path(tmp) / f"edit-{step}-{mirror}.mp4", step, mirror)
                found += [(s.signal_type, s.value) for s in hash_path(edited).signals
                          if s.signal_type == VideoPdqSignal.name and registry.get(s.signal_type).matchable(s)]
    return list(dict.fromkeys(found))


#: Border crops banked beside a video of known material (each with its mirror).
VIDEO_CROP_STEPS = (0.02, 0.04, 0.06, 0.08)


def _edit_video(src: Path, dst: Path, crop: float, mirror: bool) -> Path:
    """``src`` re-encoded with ``crop`` of each side cut and mirrored if asked (H.264, the source's frame rate)."""
    with av.open(str(src)) as source, av.open(str(dst), mode="w") as out:
        video = source.streams.video[0]
        stream: av.VideoStream | None = None
        for frame in source.decode(video=0):
            pixels: np.ndarray[Any, np.dtype[np.uint8]] = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
            h, w = pixels.shape[:2]
            dy, dx = int(h * crop), int(w * crop)
            pixels = pixels[dy:h - dy, dx:w - dx]
            if mirror:
                pixels = pixels[:, ::-1]
            pixels = np.ascontiguousarray(pixels[: pixels.shape[0] // 2 * 2, : pixels.shape[1] // 2 * 2])
            if stream is None:
                stream = out.add_stream("libx264", rate=video.average_rate or Fraction(10))
                stream.pix_fmt = "yuv420p"
                stream.height, stream.width = pixels.shape[:2]
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return dst


def _get(session: Session, crisis_id: int) -> Crisis:
    crisis = session.get(Crisis, crisis_id)
    if crisis is None:
        raise CrisisNotFound(f"no crisis {crisis_id}")
    return crisis


def bank_material(c: Crises, crisis_id: int, material: Sequence[tuple[str, str]], *, actor: Principal
                  ) -> MaterialBanked:
    """Known material found since activation (variants, the exchanges' hashes), into the crisis bank."""
    if not material:
        raise InvalidCrisis("material: at least one hash")
    with c.db.write() as session:
        crisis = _get(session, crisis_id)
        next_state(CrisisState(crisis.state), CrisisChange.BANK_MATERIAL)
        added, skipped = _bank_values(c, session, crisis, material, actor, strict=True)
        banked = MaterialBanked(entry_ids=added, skipped=skipped)
        _log(c, session, crisis, CrisisEventKind.MATERIAL_BANKED, actor.actor, banked)
        return banked


def bank_perpetrator_content(c: Crises, crisis_id: int, content_id: str, *, actor: Principal) -> PerpetratorBanked:
    """Perpetrator content a moderator confirmed as a violation, into the crisis bank at once (the curation loop:
    ``moderation/curation.py`` refuses content no moderator confirmed, and child sexual abuse material)."""
    with c.db.read() as session:
        crisis = _get(session, crisis_id)
        next_state(CrisisState(crisis.state), CrisisChange.BANK_PERPETRATOR_CONTENT)
        bank = crisis.bank
    curated = curation.curate(c.mod, content_id, bank, actor=actor)
    with c.db.write() as session:
        crisis = _get(session, crisis_id)
        banked = PerpetratorBanked(content_id=content_id, entry_ids=curated.added, skipped=curated.skipped,
                                   shared=_share(c, session, crisis, content_id))
        _log(c, session, crisis, CrisisEventKind.PERPETRATOR_BANKED, actor.actor, banked)
        return banked


def _share(c: Crises, session: Session, crisis: Crisis, content_id: str) -> list[str]:
    """Queue the content's hashes in the crisis bank to the crisis's exchanges, in the caller's transaction.

    Every entry curation made of the content, not only those it made this time: after a crash between banking and
    this step, a retry finds them banked already and still shares them (the outbox keys make a repeat one message).
    """
    if not crisis.share_with:
        return []
    if c.sharing is None:  # fail closed: nothing is sent, and the timeline says why
        return [f"{name}: not sent (no exchanges configured in this process)" for name in crisis.share_with]
    bank = bank_services.get_bank(session, crisis.bank)
    hashes = [SharedHash(e.signal_type, e.value, e.category, bank.restricted)
              for e in bank_services.entries_from(session, bank, f"content:{content_id}")]
    if not hashes:
        return []
    tags = [f"crisis:{crisis.reference}", *crisis.categories]
    return c.sharing.queue(session, subject=crisis_subject(crisis.id), names=list(crisis.share_with), hashes=hashes,
                           tags=tags, description=f"{crisis.protocol} {crisis.reference}: perpetrator content "
                                                  "confirmed by a moderator")


#: Who banks confirmed removals automatically (named in the audit log and on the timeline).
CURATOR = Principal("system", 0, "crisis-curator", Role.ADMIN)


def bank_confirmed_removals(c: Crises) -> bool:
    """For each active crisis that asks for it, bank the media of removals moderators confirmed in its categories
    since it last looked (a worker calls this every refresh interval). Safe in many processes at once: a hash
    already banked is skipped, and the timeline event is written once per decision (its external id).

    Returns ``True`` when a full batch was read (more may be waiting).
    """
    more = False
    with c.db.read() as session:
        crises = [(r.id, r.decisions_seen, tuple(r.categories), r.bank) for r in session.scalars(
            select(Crisis).where(Crisis.state == CrisisState.ACTIVE.value, Crisis.bank_confirmed.is_(True)))]
    for crisis_id, seen, categories, bank in crises:
        with c.db.read() as session:
            decided = moderated.removals_decided_after(session, seen)
        more = more or len(decided) == 200
        for d in decided:
            if d.category in categories:
                _bank_confirmed(c, crisis_id, bank, d)
        if decided:
            with c.db.write() as session:
                row = _get(session, crisis_id)
                row.decisions_seen = max(row.decisions_seen, decided[-1].event_id)
    return more


def _bank_confirmed(c: Crises, crisis_id: int, bank: str, decided: moderated.ConfirmedDecision) -> None:
    curated = True
    try:
        done = curation.curate(c.mod, decided.content_id, bank, actor=CURATOR)
        banked = PerpetratorBanked(content_id=decided.content_id, entry_ids=done.added, skipped=done.skipped)
    except DomainError:  # media with no signal, or suspected child sexual abuse material (restricted banks only):
        # the timeline is read by analysts, so it says no more than that curation refused it; nothing is shared
        banked = PerpetratorBanked(content_id=decided.content_id, skipped=["not banked: curation refused it"])
        curated = False
    with c.db.write() as session:
        crisis = _get(session, crisis_id)
        if crisis.state != CrisisState.ACTIVE.value:
            return
        next_state(CrisisState(crisis.state), CrisisChange.BANK_PERPETRATOR_CONTENT)
        if curated:
            banked.shared = _share(c, session, crisis, decided.content_id)
        event_log.record(session, CrisisEvent, subject=crisis_subject(crisis_id),
                         kind=CrisisEventKind.PERPETRATOR_BANKED, actor=CURATOR.actor, at=c.clock.now(),
                         data=banked, external_id=f"crisis:{crisis_id}:decision:{decided.event_id}")


def record_share(c: Crises, subject: str, shared: HashShared, *, key: str) -> None:
    """Record on its crisis how sharing one hash ended (``exchanges.tasks.ContributionSender`` tells it, wired in
    ``web/app.py``). Once per outbox message (``key``), however often it is told; a subject that is no crisis is
    ignored (another domain's contribution)."""
    prefix, _, number = subject.partition(":")
    if prefix != "crisis" or not number.isdigit():
        return
    with c.db.write() as session:
        crisis = session.get(Crisis, int(number))
        if crisis is None:
            return
        next_state(CrisisState(crisis.state), CrisisChange.RECORD_SHARE)
        event_log.record(session, CrisisEvent, subject=subject, kind=CrisisEventKind.HASH_SHARED,
                         actor="exchanges", at=c.clock.now(), data=shared, external_id=f"share:{key}"[:300])


def record_threat(c: Crises, crisis_id: int, content_id: str, sent_to: Sequence[str], *, actor: str) -> None:
    """Record on the crisis an Art. 14(5) report already sent (``orders/services.py: report_threat_to_life``)."""
    with c.db.write() as session:
        _log(c, session, _get(session, crisis_id), CrisisEventKind.THREAT_REPORTED, actor,
             ThreatReported(content_id=content_id, sent_to=list(sent_to)))


def check_may_report(c: Crises, crisis_id: int) -> None:
    with c.db.read() as session:
        next_state(CrisisState(_get(session, crisis_id).state), CrisisChange.REPORT_THREAT)


def add_note(c: Crises, crisis_id: int, text: str, *, actor: Principal) -> None:
    text = text.strip()
    if not 1 <= len(text) <= 5000:
        raise InvalidCrisis("note: 1 to 5000 characters")
    with c.db.write() as session:
        _log(c, session, _get(session, crisis_id), CrisisEventKind.NOTE, actor.actor, Note(text=text))


def deactivate(c: Crises, crisis_id: int, *, actor: Principal, note: str = "") -> Crisis:
    """End a crisis: its rules stop within a refresh interval; its bank stays (its entries keep matching under the
    policy's own rules: a re-upload of known material is still caught, now by the file's rules)."""
    if len(note) > 5000:
        raise InvalidCrisis("note: at most 5000 characters")
    with c.db.write() as session:
        crisis = _get(session, crisis_id)
        _log(c, session, crisis, CrisisEventKind.DEACTIVATED, actor.actor, Deactivated(note=note.strip()))
        crisis.deactivated_at = c.clock.now()
        return crisis


def list_crises(session: Session, *, state: CrisisState | None = None) -> list[Crisis]:
    query = select(Crisis).order_by(Crisis.id.desc())
    if state is not None:
        query = query.where(Crisis.state == state.value)
    return list(session.scalars(query))


def get_crisis(session: Session, crisis_id: int) -> Crisis:
    return _get(session, crisis_id)


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str
    actor: str
    summary: str


@dataclass(frozen=True)
class Timeline:
    """A crisis as the console shows it: its events, and the uploads its bank blocked, per minute."""

    crisis: Crisis
    rules: list[str]
    events: list[TimelineItem]
    #: ``(minute, uploads blocked)``, oldest first, minutes with none left out.
    blocked_per_minute: list[tuple[dt.datetime, int]]
    blocked: int
    #: Uploads caught only as a variant (a mirrored or rotated copy).
    variants_found: int
    held: int


def _summary(event: CrisisEvent) -> str:
    kind = CrisisEventKind(event.kind)
    if kind is CrisisEventKind.ACTIVATED:
        a = event_log.payload(event, Activated)
        level = f" level {a.level}" if a.level else ""
        return f"activated under {a.protocol}{level} ({a.reference}) for {', '.join(a.countries) or 'no country'}"
    if kind is CrisisEventKind.MATERIAL_BANKED:
        m = event_log.payload(event, MaterialBanked)
        return f"{len(m.entry_ids)} known hashes banked" + (f", {len(m.skipped)} skipped" if m.skipped else "")
    if kind is CrisisEventKind.PERPETRATOR_BANKED:
        p = event_log.payload(event, PerpetratorBanked)
        shared = f"; shared: {'; '.join(p.shared)}" if p.shared else ""
        return f"perpetrator content {p.content_id}: {len(p.entry_ids)} hashes banked{shared}"
    if kind is CrisisEventKind.HASH_SHARED:
        h = event_log.payload(event, HashShared)
        what = f"{h.signal_type} {h.value[:16]}…"
        if h.accepted_id:
            return f"{what} accepted by {h.exchange} as {h.accepted_id}"
        status = f" (HTTP {h.http_status})" if h.http_status else ""
        return f"{what} not accepted by {h.exchange}{status}: {h.error}"
    if kind is CrisisEventKind.THREAT_REPORTED:
        t = event_log.payload(event, ThreatReported)
        return f"imminent threat to life in {t.content_id} reported to {', '.join(t.sent_to)}"
    if kind is CrisisEventKind.NOTE:
        return event_log.payload(event, Note).text
    d = event_log.payload(event, Deactivated)
    return "deactivated" + (f": {d.note}" if d.note else "")


def timeline(session: Session, crisis_id: int) -> Timeline:
    crisis = _get(session, crisis_id)
    events = [TimelineItem(e.at, e.kind, e.actor, _summary(e))
              for e in event_log.history(session, CrisisEvent, crisis_subject(crisis.id))]
    hits = moderated.bank_hits(session, crisis.bank, crisis.activated_at)
    per_minute: dict[dt.datetime, int] = {}
    for hit in hits:
        if hit.verdict == Verdict.BLOCK.value:
            minute = hit.at.replace(second=0, microsecond=0)
            per_minute[minute] = per_minute.get(minute, 0) + 1
    return Timeline(crisis, rules_in_words(ActiveCrisis.from_row(crisis)), events, sorted(per_minute.items()),
                    blocked=sum(per_minute.values()),
                    variants_found=sum(1 for h in hits if h.variant and h.verdict == Verdict.BLOCK.value),
                    held=sum(1 for h in hits if h.verdict == Verdict.REVIEW.value))
