"""HMA's vocabulary over Bastion's banks: its signal type and content type names, its bank content ids, its answers.

Everything here is a translation; the banks, their entries, the restricted rule, the change log and the audit are
the matching domain's, used through its services. What HMA has and Bastion does not is listed in docs/hma.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.hashing import registry
from bastion.hashing.interfaces import HashResult, InvalidSignalValue, MediaKind
from bastion.hashing.services import FileSignals
from bastion.hma.interfaces import HmaError
from bastion.hma.models import HmaContent
from bastion.matching import services as banks
from bastion.matching.interfaces import BankError, BankExists, BankNotFound, EntryNotFound, RestrictedBank
from bastion.matching.matcher import Match
from bastion.matching.models import Bank, BankChange, BankEntry

#: HMA's names for the signal types Bastion calls otherwise (python-threatexchange's ``video_md5``...); the others
#: (``pdq``) are the same name, and Bastion's own (``video_pdq``, ``text``, ``url``) keep theirs.
HMA_NAMES = {"md5": "video_md5", "sha256": "video_sha256"}
_BASTION_NAMES = {hma: ours for ours, hma in HMA_NAMES.items()}


@dataclass(frozen=True)
class ContentType:
    """One of HMA's content types: the multipart part name that carries it, what the file must be, and the
    signals answered when the caller names none (HMA's defaults, and Bastion's perceptual video hash)."""

    name: str
    kind: MediaKind
    default_signals: tuple[str, ...]


CONTENT_TYPES = {
    "photo": ContentType("photo", MediaKind.IMAGE, ("pdq",)),
    "video": ContentType("video", MediaKind.VIDEO, ("video_md5", "video_pdq")),
}
#: HMA's ``disable_until_ts`` magic values.
ENABLED_TS = 1
DISABLED_TS = 0
FIVE_YEARS_SECONDS = 5 * 365 * 24 * 3600


def hma_name(signal_type: str) -> str:
    return HMA_NAMES.get(signal_type, signal_type)


def signal_type_for(name: str) -> str:
    """Bastion's signal type for an HMA name; ``HmaError`` 400 as HMA answers an unknown one."""
    ours = _BASTION_NAMES.get(name, name)
    try:
        return registry.get(ours).name
    except registry.UnknownSignalType:
        raise HmaError(400, f"No such SignalType '{name}'") from None


def parse_signal(name: str, value: str) -> HashResult:
    kind = registry.get(signal_type_for(name))
    try:
        return HashResult(kind.name, kind.validate(value))
    except InvalidSignalValue as exc:
        raise HmaError(400, f"invalid signal: {exc}") from None


def content_type(name: str) -> ContentType:
    found = CONTENT_TYPES.get(name)
    if found is None:
        raise HmaError(400, f"no such content_type: '{name}'")
    return found


def content_type_of(declared: str, hint: str | None) -> ContentType:
    """The content type of fetched media: the ``content_type`` parameter, else the server's Content-Type."""
    if hint:
        return content_type(hint)
    if declared.lower().startswith("image"):
        return CONTENT_TYPES["photo"]
    if declared.lower().startswith("video"):
        return CONTENT_TYPES["video"]
    raise HmaError(400, f"unsupported url ContentType: '{declared}', if you know the expected type, provide it with "
                        "the content_type query param")


def selected_signals(signals: FileSignals, ctype: ContentType, types: str | None) -> dict[str, str]:
    """HMA's ``/h/hash`` answer: HMA signal type name to value, for the content type's defaults or for ``types``
    (comma-separated; HMA's names or Bastion's). Each value is the hash HMA itself computes of the file (an EXIF
    photo's stored pixels, a palette read as grey levels, a phone video's sideways frames; docs/interop.md), so a
    client that banks what ``/h/hash`` answers banks what HMA would have."""
    if signals.kind is not ctype.kind:
        raise HmaError(400, f"the {ctype.name} part holds no {ctype.kind.value} (Bastion read it as "
                            f"{signals.kind.value})")
    by_type = {s.signal_type: s.value for s in signals.signals} | signals.reference
    if types is None:
        return {n: by_type[signal_type_for(n)] for n in ctype.default_signals if signal_type_for(n) in by_type}
    chosen: dict[str, str] = {}
    for raw in types.split(","):
        name = raw.strip()
        if not name:
            continue
        ours = _BASTION_NAMES.get(name, name)
        if ours not in by_type:
            raise HmaError(400, f"signal type '{name}' doesn't exist or is disabled")
        chosen[name] = by_type[ours]
    if not chosen:
        raise HmaError(400, "empty signal type selection")
    return chosen


def bank_names(raw: str | None) -> set[str] | None:
    return {b for b in raw.split(",") if b} if raw else None


# --- bank content ids -----------------------------------------------------------------------------------------


def content_ids(session: Session, entry_ids: Iterable[int]) -> dict[int, int]:
    """Each entry's HMA content id: its group's, or its own when it was not banked through HMA's API."""
    ids = list(set(entry_ids))
    found = {e: e for e in ids}
    if ids:
        for entry_id, content_id in session.execute(
                select(HmaContent.entry_id, HmaContent.content_id).where(HmaContent.entry_id.in_(ids))):
            found[entry_id] = content_id
    return found


def lookup_answer(session: Session, matches: Sequence[Match], names: Mapping[str, str]
                  ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """HMA's ``/m/lookup`` answer from matches the caller may see: per HMA signal type name (``names`` maps
    Bastion's to the caller's), per bank, the matched contents with HMA's distance (a string)."""
    ids = content_ids(session, (m.entry_id for m in matches))
    answer: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in names.values()}
    for m in matches:
        name = names.get(m.signal_type, hma_name(m.signal_type))
        answer.setdefault(name, {}).setdefault(m.bank, []).append(
            {"bank_content_id": ids[m.entry_id], "distance": str(m.distance)})
    return answer


def raw_lookup_answer(session: Session, matches: Sequence[Match], include_distance: bool) -> dict[str, Any]:
    ids = content_ids(session, (m.entry_id for m in matches))
    if include_distance:
        return {"matches": [{"bank_content_id": ids[m.entry_id], "distance": str(m.distance)} for m in matches]}
    return {"matches": list(dict.fromkeys(ids[m.entry_id] for m in matches))}


# --- banks ----------------------------------------------------------------------------------------------------


def bank_json(bank: Bank) -> dict[str, Any]:
    """HMA's BankConfig: Bastion's banks are on or off, so the ratio is 1.0 or 0.0."""
    return {"name": bank.name, "matching_enabled_ratio": 1.0 if bank.enabled else 0.0}


def enabled_from(enabled_ratio: float | None, enabled: bool | None) -> bool | None:
    """HMA's ``enabled_ratio`` (or ``enabled``) as Bastion's switch; a ratio strictly between 0 and 1 (HMA's
    sampled matching) has no counterpart and is refused rather than rounded."""
    if enabled_ratio is not None:
        if enabled_ratio not in (0.0, 1.0):
            raise HmaError(400, "enabled_ratio must be 0.0 or 1.0 on Bastion (banks match all or nothing)")
        return enabled_ratio == 1.0
    return enabled


def visible_bank(session: Session, name: str, principal: Principal) -> Bank:
    """The bank, or HMA's 404 (the same for a missing bank and a restricted one the caller may not see)."""
    try:
        return banks.visible_bank(session, name, principal)
    except BankNotFound:
        raise HmaError(404, f"bank '{name}' not found") from None


def create_bank(db: Database, name: str, enabled: bool | None, *, actor: Principal, restricted: bool,
                clock: Clock) -> Bank:
    """A bank made through HMA's API: plain unless the deployment makes them restricted (docs/hma.md)."""
    try:
        bank = banks.create_bank(db, name, actor=actor, restricted=restricted, description="made through HMA's API",
                                 clock=clock)
        if enabled is False:
            bank = banks.update_bank(db, name, actor=actor, enabled=False, clock=clock)
    except BankExists:
        raise HmaError(403, "Bank already exists") from None
    except RestrictedBank as exc:
        raise HmaError(403, str(exc)) from None
    except BankError as exc:
        raise HmaError(400, str(exc)) from None
    return bank


def update_bank(db: Database, name: str, *, rename: str | None, enabled: bool | None, actor: Principal,
                clock: Clock) -> Bank:
    with db.read() as session:
        visible_bank(session, name, actor)
    if rename is not None and rename != name:
        raise HmaError(400, "banks cannot be renamed on Bastion (a bank's name is its key in audits and reports)")
    return banks.update_bank(db, name, actor=actor, enabled=enabled, clock=clock)


# --- bank content ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankedContent:
    """One HMA content: its id, its bank, its member entries and what HMA keeps of it."""

    id: int
    bank: Bank
    entries: tuple[BankEntry, ...]
    disable_until_ts: int
    original_media_uri: str | None
    #: HMA's ``collab_metadata``: the exchanges its entries came from, each with its records' ids.
    collab_metadata: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self, include_signals: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "disable_until_ts": self.disable_until_ts,
                               "collab_metadata": self.collab_metadata,
                               "original_media_uri": self.original_media_uri, "bank": bank_json(self.bank)}
        if include_signals:
            out["signals"] = {hma_name(e.signal_type): e.value for e in self.entries}
        return out


def get_content(session: Session, bank: Bank, content_id: int) -> BankedContent:
    grouped = select(HmaContent.entry_id).where(HmaContent.content_id == content_id)
    rows = session.execute(
        select(BankEntry, HmaContent).outerjoin(HmaContent, HmaContent.entry_id == BankEntry.id)
        .where(BankEntry.bank_id == bank.id,
               or_(BankEntry.id.in_(grouped), (BankEntry.id == content_id) & HmaContent.entry_id.is_(None)))
        .order_by(BankEntry.id)).all()
    if not rows:
        raise HmaError(404, f"content '{content_id}' not found")
    entries = tuple(entry for entry, _ in rows)
    link = next((link for _, link in rows if link is not None), None)
    if link is not None:
        ts, uri = link.disable_until_ts, link.original_media_uri
    else:
        ts, uri = (ENABLED_TS if entries[0].enabled else DISABLED_TS), None
    if ts in (ENABLED_TS, DISABLED_TS):  # the entries' state wins: /v1 and the console may have changed it
        ts = ENABLED_TS if any(e.enabled for e in entries) else DISABLED_TS
    collab: dict[str, list[str]] = {}
    for found in banks.origins_of(session, [e.id for e in entries]).values():
        for origin in found:
            records = collab.setdefault(origin.exchange, [])
            if origin.record not in records:
                records.append(origin.record)
    return BankedContent(content_id, bank, entries, ts, uri, collab)


def add_content(db: Database, bank_name: str, signals: Mapping[str, str], *, actor: Principal, clock: Clock,
                metadata: dict[str, Any] | None = None, original_media_uri: str | None = None) -> dict[str, Any]:
    """Bank one file's signals as one content, in one transaction; HMA's answer ``{id, signals}``.

    A value the bank holds already is not banked twice: banking the same file again answers the content id it has.
    """
    if not signals:
        raise HmaError(400, "No signals given")
    parsed = {name: parse_signal(name, value) for name, value in signals.items()}
    with db.write() as session:
        bank = visible_bank(session, bank_name, actor)
        new_ids: list[int] = []
        existing: list[int] = []
        for name, signal in parsed.items():
            try:
                entry = banks.NewEntry.parse(signal.signal_type, signal.value, source="hma")
            except BankError as exc:
                raise HmaError(400, f"Invalid {name} signal: {exc}") from None
            held = session.scalar(select(BankEntry.id).where(
                BankEntry.bank_id == bank.id, BankEntry.signal_type == entry.signal_type,
                BankEntry.value_digest == banks.value_digest(entry.value)))
            if held is not None:
                existing.append(held)
                continue
            new_ids.append(banks.add_entry_in(db, session, bank, entry, actor=actor, clock=clock).id)
        if new_ids:
            content_id = new_ids[0]
            for entry_id in new_ids:
                session.add(HmaContent(entry_id=entry_id, content_id=content_id, disable_until_ts=ENABLED_TS,
                                       original_media_uri=original_media_uri, content_metadata=metadata or {}))
        else:
            content_id = content_ids(session, existing)[existing[0]]
    return {"id": content_id, "signals": {name: s.value for name, s in parsed.items()}}


def update_content(db: Database, bank_name: str, content_id: int, disable_until_ts: Any, *, actor: Principal,
                   clock: Clock) -> dict[str, Any]:
    """HMA's ``disable_until_ts``: 1 enables the content's entries; 0 or a time to come disables them (Bastion
    does not enable them again by itself when the time passes: a curator does)."""
    ts = _timestamp(disable_until_ts)
    enable = ts == ENABLED_TS or (ts > ENABLED_TS and ts <= clock.now().timestamp())
    with db.read() as session:
        content = get_content(session, visible_bank(session, bank_name, actor), content_id)
    for entry in content.entries:
        banks.set_entry_enabled(db, bank_name, entry.id, enable, actor=actor, clock=clock)
    with db.write() as session:
        for entry in content.entries:
            link = session.get(HmaContent, entry.id)
            if link is None:
                session.add(HmaContent(entry_id=entry.id, content_id=content_id, disable_until_ts=ts,
                                       content_metadata={}))
            else:
                link.disable_until_ts = ts
        return get_content(session, visible_bank(session, bank_name, actor), content_id).to_json()


def _timestamp(raw: Any) -> int:
    try:
        ts = int(raw)
    except (TypeError, ValueError):
        raise HmaError(400, f"Invalid int: '{raw}'") from None
    if isinstance(raw, bool) or ts < 0:
        raise HmaError(400, "disable_until_ts must be a non-negative integer")
    if ts > time.time() + FIVE_YEARS_SECONDS:
        raise HmaError(400, "disable_until_ts must be less than 5 years in the future")
    return ts


def delete_content(db: Database, bank_name: str, content_id: int, *, actor: Principal, clock: Clock) -> int:
    """Remove every entry of the content; HMA's count of what was deleted (0 for an unknown id)."""
    with db.read() as session:
        bank = visible_bank(session, bank_name, actor)
        try:
            content = get_content(session, bank, content_id)
        except HmaError:
            return 0
    deleted = 0
    for entry in content.entries:
        try:
            banks.remove_entry(db, bank_name, entry.id, actor=actor, clock=clock)
            deleted += 1
        except EntryNotFound:  # removed meanwhile through another API
            continue
    return deleted


# --- index status and compare ---------------------------------------------------------------------------------


def index_status(session: Session, viewer: Principal, *, loaded: bool, applied_change_id: int,
                 only: str | None) -> dict[str, dict[str, Any]]:
    """HMA's ``/m/index/status``: per signal type, whether the index is built, up to when and its size.

    Both count only the banks ``viewer`` may see: ``size`` their enabled hashes, ``built_to`` the Unix time of the
    last change to one of them that this process has applied (0 when none has changed). A restricted bank's
    activity must not move either number for a caller outside the child-safety roles.
    """
    names = [hma_name(t.name) for t in registry.signal_types()]
    if only is not None:
        names = [hma_name(signal_type_for(only))]
    sizes: dict[str, int] = {}
    visible: list[int] = []
    for summary in banks.list_banks(session, viewer=viewer):
        visible.append(summary.bank.id)
        for signal_type, n in summary.by_signal_type.items():
            sizes[hma_name(signal_type)] = sizes.get(hma_name(signal_type), 0) + n
    last = session.scalar(select(func.max(BankChange.at)).where(
        BankChange.id <= applied_change_id, BankChange.bank_id.in_(visible))) if visible else None
    built_to = int(last.timestamp()) if isinstance(last, dt.datetime) else 0
    return {name: {"present": loaded, "built_to": built_to if loaded else -1, "size": sizes.get(name, 0)}
            for name in names}


def compare(body: Any) -> dict[str, Any]:
    """HMA's ``/m/compare``: per signal type, ``[match, {"distance": d}]`` for a pair of hashes, at the signal
    type's default threshold."""
    if not isinstance(body, dict):
        raise HmaError(400, "Request input was not a dict")
    results: dict[str, Any] = {}
    for name, pair in body.items():
        if not isinstance(pair, list):
            raise HmaError(400, f"Comparison hashes for {name} was not a list")
        if len(pair) != 2:
            raise HmaError(400, "Comparison hash list length must be exactly 2")
        kind = registry.get(signal_type_for(str(name)))
        try:
            left, right = (kind.validate(str(v)) if isinstance(v, str) else _not_a_string(v) for v in pair)
        except InvalidSignalValue as exc:
            raise HmaError(400, f"Invalid {name} hash: {exc}") from None
        distance = kind.distance(left, right)
        results[str(name)] = [distance <= kind.default_threshold, {"distance": distance}]
    return results


def _not_a_string(value: object) -> str:
    raise InvalidSignalValue(f"expected a string, got {type(value).__name__}")


def all_signal_type_names() -> list[str]:
    """Every signal type, by the name HMA's clients use for it."""
    return [hma_name(t.name) for t in registry.signal_types()]
