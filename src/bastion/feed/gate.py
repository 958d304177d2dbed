"""The feed gate: which candidates a recommender may show a viewer, and why the others may not be shown.

``FeedGate.filter(viewer, candidates)`` judges in process from the eligibility view (``view.py``): no database
read per candidate, so a feed of 500 candidates costs a few hundred microseconds. ``FeedGate.viewer`` resolves a
viewer once (their age band, from what the minors domain knows, unless the platform gives an age); an unknown age is
treated as a minor's (fail closed: age-restricted content is kept out). Likewise a viewer whose country is not
given is kept from content disabled in any territory: the platform that wants it shown says where the viewer is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.core.db import Database
from bastion.feed.interfaces import REASON_TEXT, InvalidViewer, Reason
from bastion.feed.view import EligibilityView
from bastion.minors import ages, bands
from bastion.minors.interfaces import MINOR_BANDS, AgeNotRecorded, Band

#: The most candidates one request may carry.
MAX_CANDIDATES = 5000


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the feed is for: their account, age band (``Band.UNKNOWN`` when nothing is known) and country (ISO 3166-1
    alpha-2, upper case; ``None`` when not given)."""

    account_id: str
    band: Band = Band.UNKNOWN
    country: str | None = None

    @property
    def minor(self) -> bool:
        """May be a child: a minor's band, or unknown (fail closed)."""
        return self.band in MINOR_BANDS

    @classmethod
    def of_age(cls, account_id: str, years: float, country: str | None = None) -> Viewer:
        if not 0 <= years <= 150:
            raise InvalidViewer("age must be between 0 and 150 years")
        return cls(account_id, bands.band_of_years(years), country)

    def in_country(self, country: str | None) -> Viewer:
        """The same viewer, placed in ``country`` (two letters)."""
        if country is None:
            return self
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise InvalidViewer("country must be an ISO 3166-1 alpha-2 code, e.g. DE")
        return Viewer(self.account_id, self.band, country.upper())


@dataclass(frozen=True, slots=True)
class Exclusion:
    content_id: str
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, object]:
        return {"content_id": self.content_id, "reasons": list(self.reasons)}  # StrEnum: written as its text


@dataclass(frozen=True)
class FilterResult:
    """The candidates the feed may show, in the order given, and the others with their reasons."""

    eligible: list[str] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)

    def reasons_used(self) -> dict[str, str]:
        """The readable text of each reason this result cites."""
        used = {r for e in self.excluded for r in e.reasons}
        return {r.value: REASON_TEXT[r] for r in Reason if r in used}


_UNKNOWN = (Reason.UNKNOWN,)
_AGE = (Reason.AGE_RESTRICTED,)
_CRISIS = (Reason.CRISIS_EXCLUSION,)
_TERRITORY = (Reason.DISABLED_IN_TERRITORY,)


class FeedGate:
    """The gate over one eligibility view. Thread-safe: it only reads the view."""

    def __init__(self, db: Database, view: EligibilityView) -> None:
        self._db = db
        self.view = view

    def viewer(self, account_id: str, age: float | None = None) -> Viewer:
        """A viewer by account: the age the platform gives now, else the band the minors domain recorded, else
        unknown (treated as a minor)."""
        if age is not None:
            return Viewer.of_age(account_id, age)
        try:
            with self._db.read() as session:
                band = ages.get_age(session, account_id).band
            return Viewer(account_id, Band(band))
        except (AgeNotRecorded, ValueError):  # nothing known, or a band this build does not know: a minor's
            return Viewer(account_id, Band.UNKNOWN)

    def filter(self, viewer: Viewer, candidates: Sequence[str]) -> FilterResult:
        """Judge ``candidates`` for ``viewer``: eligible ones in the order given; the rest with every reason that
        holds (an unknown id: ``unknown``). A duplicate id is judged each time it appears."""
        entries = self.view.entries
        live_excluded = self.view.live_excluded
        minor = viewer.minor
        country = viewer.country
        eligible: list[str] = []
        excluded: list[Exclusion] = []
        for content_id in candidates:
            entry = entries.get(content_id)
            if entry is None:
                excluded.append(Exclusion(content_id, _UNKNOWN))
                continue
            reasons = entry.reasons
            if minor and entry.age_restricted:
                reasons = reasons + _AGE
            if entry.live_country is not None and entry.live_country in live_excluded:
                reasons = reasons + _CRISIS
            if entry.territories and (country is None or country in entry.territories):
                reasons = reasons + _TERRITORY
            if reasons:
                excluded.append(Exclusion(content_id, reasons))
            else:
                eligible.append(content_id)
        return FilterResult(eligible, excluded)
