"""Text: normalisation, the threshold on edited manifestos and slogans, raw-text import, an exact index."""

from __future__ import annotations

import base64
import hashlib
import string
from pathlib import Path

import numpy as np
import pytest

from bastion.hashing import services
from bastion.hashing.interfaces import FileHasher, InvalidSignalValue, MediaKind
from bastion.hashing.text import (
    BAND_ROWS,
    BANDS,
    EXACT_BAND_THRESHOLD,
    TextIndex,
    TextSignal,
    _decode_minhash,
    _encode_minhash,
    normalise,
    signature,
)

THRESHOLD = TextSignal.default_threshold

MANIFESTO = "\n\n".join([
    "We the undersigned have watched for many years as the river towns emptied, one shuttered shop "
    "after another, while the people who decide such things looked away. This letter is our record of"
    " what we saw and what we intend.",
    "First, the harvest. Every autumn the co-operative buyers arrive later and offer less, and every "
    "spring the seed merchants ask for more. The arithmetic has stopped working for anyone who farms "
    "fewer than two hundred acres. Nobody in the capital has asked us how we manage; they publish "
    "their forecasts and move on.",
    "Second, the railway. When the branch line closed, the council promised a bus every hour. The bus"
    " came twice a day for one winter and then not at all. Our children now leave at sixteen because "
    "there is no way to reach the college in the valley without a car, and there is no money for a "
    "car.",
    "Third, the water. The reservoir built above Millbrook was sold to a company registered somewhere"
    " warm and distant. Since then the meters have doubled in price and the pipes have not been "
    "touched. Last August the taps ran brown for eleven days and the only answer we received was a "
    "leaflet.",
    "We are not asking for charity. We are asking for the line to be reopened, for the reservoir to "
    "return to public hands, and for a fair price at the co-operative gate. We will meet in the "
    "square at Millbrook on the first Saturday of every month until these things are done, and we "
    "will keep writing until someone answers.",
    "Signed, on behalf of the river towns, by the committee of the Millbrook assembly.",
])

UNRELATED = "\n\n".join([
    "The recipe for a good sourdough loaf begins the night before. Feed the starter with equal "
    "weights of flour and water, cover it loosely, and leave it somewhere warm. By morning it should "
    "have doubled and smell pleasantly sour.",
    "Mix five hundred grams of strong white flour with three hundred and fifty grams of water and let"
    " it rest for an hour; bakers call this the autolyse. Then add a hundred grams of the starter and"
    " ten grams of salt, and work the dough with wet hands until it feels smooth and elastic. Over "
    "the next four hours, stretch and fold the dough every thirty minutes, shape it, and leave it in "
    "the fridge overnight before baking it in a very hot covered pot.",
])


def _edit(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return text


def _without_paragraph(text: str, n: int) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join(paragraphs[:n] + paragraphs[n + 1 :])


EDITS = {
    "a sentence rewritten": _edit(MANIFESTO, (
        "The arithmetic has stopped working for anyone who farms fewer than two hundred acres.",
        "Small farms can no longer make ends meet at these prices, whatever they grow.")),
    "words replaced": _edit(MANIFESTO, ("shuttered", "closed"), ("children", "kids"), ("leaflet", "pamphlet"),
                            ("capital", "city"), ("autumn", "fall"), ("council", "authority")),
    "punctuation changed": MANIFESTO.replace(",", "").replace(".", "!!").replace(";", " -"),
    "a paragraph removed": _without_paragraph(MANIFESTO, 3),
    "all of it at once": _without_paragraph(
        _edit(MANIFESTO, ("shuttered", "closed"), ("children", "kids"),
              ("We are not asking for charity.", "This is not a plea for charity.")).replace(",", ""), 2),
    "shouted, with zero-width spaces": MANIFESTO.upper().replace("THE", "T\u200bHE"),
    "re-flowed into one line": " ".join(MANIFESTO.split()),
}


@pytest.mark.parametrize("name", EDITS)
def test_an_edited_manifesto_still_matches(name: str) -> None:
    assert TextSignal.distance(signature(EDITS[name]), signature(MANIFESTO)) <= THRESHOLD


def test_unrelated_texts_do_not_match() -> None:
    assert TextSignal.distance(signature(UNRELATED), signature(MANIFESTO)) > 60
    paragraphs = MANIFESTO.split("\n\n")
    assert TextSignal.distance(signature(paragraphs[1]), signature(paragraphs[2])) > 60


def test_two_paragraphs_removed_is_a_different_text() -> None:
    shorter = _without_paragraph(_without_paragraph(MANIFESTO, 1), 1)
    assert TextSignal.distance(signature(shorter), signature(MANIFESTO)) > THRESHOLD


@pytest.mark.parametrize(("a", "b", "match"), [
    ("Death to the tyrants of the north!", "death to the tyrants of the NORTH", True),
    ("Join the fight for freedom today", "join the fight for freedom", True),
    ("Join the fight for freedom today", "Buy the best shoes today", False),
    ("The struggle continues", "The struggle is over", False),
])
def test_slogans(a: str, b: str, match: bool) -> None:
    assert (TextSignal.distance(signature(a), signature(b)) <= THRESHOLD) is match


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Hello,   WORLD!! ", "hello world"),
    ("\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \ufb01", "fullwidth fi"),  # NFKC
    ("Café NAÏVE straße", "cafe naive strasse"),  # accents off, casefold
    ("zero\u200bwidth\u200djoin", "zerowidthjoin"),
    ("line\nbreaks\tand — dashes…", "line breaks and dashes"),
    ("emoji 🔥 fire", "emoji fire"),
    ("مرحبا بالعالم", "مرحبا بالعالم"),
])
def test_normalisation(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_identical_normalised_texts_are_at_zero_and_others_at_least_one() -> None:
    assert TextSignal.distance(signature("Hello, world"), signature("HELLO WORLD!")) == 0
    # Same 5-grams, different text: still not "the same".
    assert TextSignal.distance(signature("abcdefabcdef"), signature("abcdefabcdefabcdef")) >= 1


def test_validate_takes_signatures_and_raw_text() -> None:
    sig = signature(MANIFESTO)
    assert len(sig) == 748 and sig[64] == ":"
    assert TextSignal.validate(sig) == sig
    assert TextSignal.validate(MANIFESTO) == sig  # curators can import known texts as text
    assert TextSignal.validate(f"  {sig}\n") == sig
    # 512 bytes in 683 base64 characters leave 2 spare bits in the last one: flipping one is the same value.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    sloppy = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    assert sloppy != sig and TextSignal.validate(sloppy) == sig


@pytest.mark.parametrize(("value", "message"), [
    ("", "at least one letter or digit"),
    ("?!… — 🔥", "at least one letter or digit"),
    ("\u200b\u200b", "at least one letter or digit"),
    ("a" * 64 + ":", "malformed text signature"),
    ("a" * 64 + ":" + "A" * 682, "malformed text signature"),
    ("a" * 64 + ":" + "A" * 683 + "=", "malformed text signature"),
])
def test_malformed_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidSignalValue, match=message):
        TextSignal.validate(value)


@pytest.mark.parametrize("near", [
    "uppercase hex",
    "standard base64",
    "standard base64, padded",
    "too short",
])
def test_near_signatures_are_refused_or_canonicalised_never_hashed_as_text(near: str) -> None:
    sig = signature(MANIFESTO)
    standard = base64.b64encode(_decode_minhash(sig).astype("<u4").tobytes()).decode()
    assert "+" in standard or "/" in standard  # else this MinHash would not test the alphabet
    if near == "uppercase hex":
        assert TextSignal.validate(sig[:64].upper() + sig[64:]) == sig
        return
    value = {
        "standard base64": sig[:65] + standard.rstrip("="),
        "standard base64, padded": sig[:65] + standard,
        "too short": sig[:64].upper() + sig[64:-5],
    }[near]
    with pytest.raises(InvalidSignalValue, match="malformed text signature"):
        TextSignal.validate(value)


def test_text_files_are_hashed_once_by_every_text_hasher(tmp_path: Path) -> None:
    """Text hashers are not file hashers: ``services`` reads a text file once and hands it to each of them."""
    assert not issubclass(TextSignal, FileHasher)
    text = MANIFESTO + "\nMore at https://example.com/letter?utm_source=x"
    path = tmp_path / "m.txt"
    path.write_text(text, encoding="utf-8")
    result = services.hash_path(path)
    assert result.kind is MediaKind.TEXT and not result.errors
    by_type = {s.signal_type: s.value for s in result.signals}
    assert [s.signal_type for s in result.signals] == ["md5", "sha256", "text", "url"]
    assert by_type["text"] == TextSignal.hash_text(text)[0].value == signature(text)
    assert by_type["url"] == "https://example.com/letter"
    assert TextSignal.hash_text("  ...  ") == []


def test_oversized_files_are_not_hashed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * (services.MAX_TEXT_BYTES // 5 + 1))
    result = services.hash_path(path)
    assert result.kind is MediaKind.TEXT
    assert [s.signal_type for s in result.signals] == ["md5", "sha256"]


# ---- index -------------------------------------------------------------------------------------------------


def _corpus(n: int, seed: int) -> list[str]:
    """Random edits of a few base texts, so that many pairs sit near the thresholds."""
    rng = np.random.default_rng(seed)
    words = (MANIFESTO + " " + UNRELATED).split()
    bases = [" ".join(rng.choice(words, 60)) for _ in range(6)]
    texts = []
    for _ in range(n):
        w = bases[int(rng.integers(len(bases)))].split()
        for _ in range(int(rng.integers(0, 25))):
            w[int(rng.integers(len(w)))] = str(rng.choice(words))
        texts.append(" ".join(w))
    return texts


@pytest.mark.parametrize("threshold", [0, 10, THRESHOLD, EXACT_BAND_THRESHOLD, 40, TextSignal.max_threshold])
def test_index_returns_exactly_what_distance_says(threshold: int) -> None:
    """The bands are exact up to EXACT_BAND_THRESHOLD (pigeonhole), the scan above it."""
    values = [signature(t) for t in _corpus(240, seed=threshold)]
    index = TextIndex(pending_limit=50)  # exercise merges of pending rows
    index.add_many(enumerate(values))
    for key in range(0, 240, 7):
        index.remove(key)
    live = {k: v for k, v in enumerate(values) if k % 7}
    for query in values[::5]:
        expected = {(k, TextSignal.distance(query, v)) for k, v in live.items()}
        expected = {(k, d) for k, d in expected if d <= threshold}
        assert {(h.key, h.distance) for h in index.query(query, threshold)} == expected


def _mismatched(value: str, bands: range) -> str:
    """Another text's value whose MinHash differs from ``value``'s in one minimum of each of ``bands``."""
    minhash = _decode_minhash(value).copy()
    minhash[[band * BAND_ROWS for band in bands]] ^= np.uint32(1)
    return f"{hashlib.sha256(str(bands).encode()).hexdigest()}:{_encode_minhash(minhash)}"


def test_worst_case_neighbours_are_found_on_both_sides_of_the_band_threshold() -> None:
    """At EXACT_BAND_THRESHOLD a neighbour can have broken every band but one, and the bands still find it;
    one mismatch more can break every band, and the index must then scan."""
    query = signature(MANIFESTO)
    one_band_left = _mismatched(query, range(BANDS - 1))
    no_band_left = _mismatched(query, range(BANDS))
    near = TextSignal.distance(query, one_band_left)
    far = TextSignal.distance(query, no_band_left)
    assert near <= EXACT_BAND_THRESHOLD < far <= TextSignal.max_threshold
    index = TextIndex()
    index.add_many([(1, one_band_left), (2, no_band_left), (3, signature(UNRELATED))])
    assert [(h.key, h.distance) for h in index.query(query, near)] == [(1, near)]
    assert [(h.key, h.distance) for h in index.query(query, far)] == [(1, near), (2, far)]


def test_index_compacts_after_many_removals() -> None:
    values = [signature(t) for t in _corpus(3000, seed=1)]
    index = TextIndex()
    index.add_many(enumerate(values))
    for key in range(2500):
        index.remove(key)
    assert len(index) == 500
    assert {h.key for h in index.query(values[2900], 0)} >= {2900}
    assert all(h.key >= 2500 for h in index.query(values[10], TextSignal.max_threshold))
    index.add(10, values[10])
    assert 10 in {h.key for h in index.query(values[10], 0)}
