"""The stated band rule, as a table."""

from __future__ import annotations

import pytest

from bastion.minors.bands import band_for, protective
from bastion.minors.interfaces import AgeBasis, Band


@pytest.mark.parametrize(("basis", "years", "confidence", "band"), [
    (None, None, None, Band.UNKNOWN),
    (AgeBasis.DECLARED, 12.9, None, Band.UNDER_13),
    (AgeBasis.DECLARED, 13, None, Band.B13_15),
    (AgeBasis.DECLARED, 15.99, None, Band.B13_15),
    (AgeBasis.VERIFIED, 16, None, Band.B16_17),
    (AgeBasis.VERIFIED, 18, None, Band.ADULT),
    (AgeBasis.ESTIMATED, 19, 0.95, Band.ADULT),  # confident: the estimate's own band
    (AgeBasis.ESTIMATED, 19, 0.7, Band.B16_17),  # less sure: two years younger
    (AgeBasis.ESTIMATED, 19, 0.3, Band.B13_15),  # low confidence: the most protective plausible band
    (AgeBasis.ESTIMATED, 15, 0.3, Band.UNDER_13),
    (AgeBasis.ESTIMATED, 2, 0.1, Band.UNDER_13),
])
def test_band_rule(basis: AgeBasis | None, years: float | None, confidence: float | None, band: Band) -> None:
    assert band_for(basis, years, confidence) is band


def test_unknown_gets_the_defaults_of_the_youngest_band_allowed_an_account() -> None:
    assert protective(Band.UNKNOWN) is Band.B13_15
    assert protective(Band.ADULT) is Band.ADULT
