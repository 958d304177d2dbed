"""Hash a file with every signal type that can read it. The one place that turns media into signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.hashing import registry
from bastion.hashing.budget import MediaOverBudget
from bastion.hashing.interfaces import AlternateHasher, HashResult, MediaKind, UnsupportedMedia, VariantHasher
from bastion.hashing.media import sniff

if TYPE_CHECKING:
    from PIL import Image

#: Text files larger than this are hashed exactly but not as text (a manifesto is far smaller).
MAX_TEXT_BYTES = 5 * 1024 * 1024


@dataclass
class FileSignals:
    """What hashing one file produced: its kind, its signals, alternates (the file as reference tools decode it,
    matched in every bank), variants for dihedral banks, and any failures."""

    path: Path
    kind: MediaKind
    signals: list[HashResult] = field(default_factory=list)
    alternates: list[HashResult] = field(default_factory=list)
    variants: list[HashResult] = field(default_factory=list)
    #: Signal type -> the value the reference tool (HMA's hasher) computes, where it differs from ``signals``'.
    reference: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: Why the file was not decoded at all: over the decoding budget (also listed in ``errors``).
    over_budget: MediaOverBudget | None = None
    #: The decoded picture, reduced, when ``hash_path`` was asked for one (``FileHashes.picture``).
    picture: Image.Image | None = None

    def to_json(self) -> list[dict[str, object]]:
        return [signal_json(s) for s in self.signals]


def signal_json(s: HashResult) -> dict[str, object]:
    out: dict[str, object] = {"signal_type": s.signal_type, "value": s.value}
    if s.quality is not None:
        out["quality"] = s.quality
    return out


def hash_path(path: Path, *, variants: bool = False, picture_px: int = 0) -> FileSignals:
    """Hash a file; one hasher failing (a corrupt frame, say) is recorded and the others still run.

    An image or video that no hasher of its kind could decode is unreadable: its ``errors`` say why, and callers
    refuse it (the API) or count it (``bastion scan``); its exact hashes are still there. With ``picture_px``, an
    image's decoded pixels also come back as a picture of at most that size (for a preview: no second decode).
    """
    kind = sniff(path)
    out = FileSignals(path, kind)
    for hasher in registry.file_hashers():
        if not hasher.accepts(kind):
            continue
        try:
            if issubclass(hasher, AlternateHasher):
                hashes = hasher.hash_with_alternates(path, kind, variants=variants, picture_px=picture_px)
                if out.picture is None:
                    out.picture = hashes.picture
                out.signals.extend(hashes.signals)
                out.alternates.extend(hashes.alternates)
                out.variants.extend(hashes.variants)
                if hashes.reference is not None:
                    out.reference[hashes.reference.signal_type] = hashes.reference.value
            elif variants and issubclass(hasher, VariantHasher):
                signals, variant_signals = hasher.hash_with_variants(path, kind)
                out.signals.extend(signals)
                out.variants.extend(variant_signals)
            else:
                out.signals.extend(hasher.hash_file(path, kind))
        except MediaOverBudget as exc:
            out.over_budget = out.over_budget or exc
            out.errors.append(str(exc))
        except UnsupportedMedia as exc:
            out.errors.append(str(exc))
    if kind is MediaKind.TEXT:
        out.signals.extend(_text_signals(path))
    return out


def _text_signals(path: Path) -> list[HashResult]:
    """What every text hasher finds in a text file (its ``text`` signature, the URLs in it), read once."""
    with path.open("rb") as f:
        data = f.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        return []
    return hash_text(data.decode("utf-8", errors="replace"))


def hash_text(text: str) -> list[HashResult]:
    """Every text hasher's signals of a text (a post, a caption, a text file's contents)."""
    results: list[HashResult] = []
    for hasher in registry.text_hashers():
        results.extend(hasher.hash_text(text))
    return results
