"""The stated rule that turns what the platform knows of an age into a band. Pure: tested as a table.

- Nothing known: ``unknown`` (treated by the rules as the most protective plausible band).
- Declared or verified: the band of the whole years given.
- Estimated: the band of the estimate less a margin that grows as confidence falls (0 years at 0.9 or more,
  2 years from 0.6, 4 years below): a low-confidence estimate gets the youngest band it plausibly is.
"""

from __future__ import annotations

import math

from bastion.minors.interfaces import AgeBasis, Band

#: (minimum confidence, years taken off the estimate), most confident first.
ESTIMATE_MARGINS: tuple[tuple[float, float], ...] = ((0.9, 0.0), (0.6, 2.0), (0.0, 4.0))


def band_of_years(years: float) -> Band:
    whole = math.floor(years)
    if whole < 13:
        return Band.UNDER_13
    if whole < 16:
        return Band.B13_15
    if whole < 18:
        return Band.B16_17
    return Band.ADULT


def margin_for(confidence: float) -> float:
    for least, margin in ESTIMATE_MARGINS:
        if confidence >= least:
            return margin
    return ESTIMATE_MARGINS[-1][1]


def band_for(basis: AgeBasis | None, years: float | None, confidence: float | None = None) -> Band:
    """The band the stated rule gives (``None`` basis or years: unknown)."""
    if basis is None or years is None:
        return Band.UNKNOWN
    if basis is AgeBasis.ESTIMATED:
        return band_of_years(max(0.0, years - margin_for(confidence if confidence is not None else 0.0)))
    return band_of_years(years)


def protective(band: Band) -> Band:
    """The band whose account defaults apply: unknown gets those of 13 to 15, the youngest band allowed an account."""
    return Band.B13_15 if band is Band.UNKNOWN else band
