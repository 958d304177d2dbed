"""The signal-type plug-in interface: every hash type Bastion knows implements it.

A *signal* is a compact fingerprint of a piece of content (a PDQ hash of a photo, the SHA-256 of a file, the
canonical form of a URL). A *signal type* is the class that knows how to make, validate and compare one kind of
signal, and which index finds near neighbours among millions of them. Banks, the matcher, the API and the CLI only
ever talk to this interface, so adding a hash type means one class, declared in ``registry.py`` (built-in) or by an
extension's manifest (``core/extensions.py``), and nothing else.

Optional abilities are mixins checked with ``issubclass``: ``FileHasher`` (hashes bytes of a media file),
``TextHasher`` (hashes a text), ``VariantHasher`` (flipped and rotated copies, for dihedral banks) and
``AlternateHasher`` (the file as other tools decode it, so partners' hashes match). The ``name`` of a signal type
is a storage key: never rename one.

Don't:
- switch on ``signal_type.name`` outside the signal type itself;
- keep per-entry Python objects in an index meant for millions of entries.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:
    from PIL import Image


class InvalidSignalValue(ValueError):
    """A value that is not a well-formed signal of the given type (wrong length, alphabet, ...)."""


class UnsupportedMedia(ValueError):
    """Bytes that no hasher of this type can read (not an image, corrupt video, ...)."""


# An absolute path inside a decoder's message, quoted or not: ``'/tmp/bastion-upload-x1y2'``.
_PATH_IN_TEXT = re.compile(r"""(['"]?)(?<![\w.~-])(?:[A-Za-z]:)?[\\/][^\s'"]*\1""")


def short_reason(exc: BaseException) -> str:
    """What went wrong, in a few words a user may see: the first line of the error, without any file path.

    Decoders (Pillow, FFmpeg) name the file they failed on, and that is a server's temporary path.
    """
    strerror = getattr(exc, "strerror", None)
    text = strerror if isinstance(strerror, str) and strerror else str(exc)
    text = (text.splitlines() or [""])[0]
    text = _PATH_IN_TEXT.sub("", text)
    text = " ".join(text.split()).strip(" :;,.")
    return text[:160] or type(exc).__name__


class MediaKind(enum.StrEnum):
    """What a file is, as far as hashing cares. Sniffed from its bytes, never trusted from its name."""

    IMAGE = "image"
    VIDEO = "video"
    TEXT = "text"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class HashResult:
    """One signal computed from content. ``quality`` is set by hashers that measure it (PDQ: 0-100)."""

    signal_type: str
    value: str
    quality: int | None = None


class IndexHit(NamedTuple):
    """An index entry near a query: the caller's key for the entry and how far it is (0 = identical).

    A named tuple, not a dataclass: the PDQ kernel builds these itself (``_mih.search(..., IndexHit)``), and a
    query near a cluster of a thousand near-duplicates returns a thousand of them.
    """

    key: int
    distance: int


class SignalIndex(abc.ABC):
    """An in-memory, exact index of one signal type's values.

    Keys are the caller's integers (bank entry ids). An index must take ``add`` and ``remove`` one at a time in well
    under a second, without a full rebuild, because banks change while uploads are being matched; it is exact:
    every entry within ``threshold`` of the query is returned (100 % recall).
    """

    #: True when ``query`` may run in any number of threads while another thread adds and removes (the index
    #: does its own locking). The matcher then takes no lock around it, so lookups scale with cores; otherwise
    #: it holds a readers-writer lock (lookups share it, changes take it alone).
    concurrent: ClassVar[bool] = False

    @abc.abstractmethod
    def add(self, key: int, value: str) -> None:
        """Insert one entry; ``value`` is already validated. Re-adding a key replaces its value."""

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        """Bulk insert, used at start-up; implementations override it when they can build faster."""
        for key, value in items:
            self.add(key, value)

    @abc.abstractmethod
    def remove(self, key: int) -> None:
        """Forget an entry (disabled or deleted). Unknown keys are ignored."""

    @abc.abstractmethod
    def query(self, value: str, threshold: int) -> list[IndexHit]:
        """Every entry at distance <= ``threshold`` from ``value``, each key once."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of live entries."""

    def nbytes(self) -> int:
        """Approximate memory held, for /status and the benchmarks (0 when not measured)."""
        return 0


class SignalType(abc.ABC):
    """One kind of signal. Everything is a class method: a signal type has no state."""

    #: Storage key, shown in CSV files and the API. Never rename.
    name: ClassVar[str]
    #: Distance at or under which two values are said to match, unless a bank sets its own.
    default_threshold: ClassVar[int] = 0
    #: Largest threshold a bank may set; validated when a bank is configured.
    max_threshold: ClassVar[int] = 0
    #: False where distance is directional, query to banked (a clip is "in" the film, not the reverse).
    symmetric_distance: ClassVar[bool] = True
    #: Set where the canonical values are exactly this many lowercase hex digits and ``validate`` returns such a
    #: value unchanged (PDQ, MD5, SHA-256): a bank import then checks a whole column of them at once and calls
    #: ``validate`` only on the lines that are not canonical already.
    hex_length: ClassVar[int | None] = None

    @classmethod
    @abc.abstractmethod
    def validate(cls, value: str) -> str:
        """Return the canonical form of ``value`` or raise ``InvalidSignalValue`` with a reason a user can act on."""

    @classmethod
    @abc.abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """Distance between two validated values; 0 means the same content."""

    @classmethod
    @abc.abstractmethod
    def index_class(cls) -> type[SignalIndex]:
        """The index that finds matches among many values of this type."""

    @classmethod
    @abc.abstractmethod
    def examples(cls) -> Sequence[str]:
        """Valid values, for the shared plug-in tests and the demo."""

    @classmethod
    def matchable(cls, result: HashResult) -> bool:
        """Whether a computed hash is good enough to match on (PDQ refuses low quality). Reported either way."""
        return True


class FileHasher(abc.ABC):
    """Mixin: the signal type can hash a media file."""

    @classmethod
    @abc.abstractmethod
    def accepts(cls, kind: MediaKind) -> bool:
        """Whether files of this kind are hashed by this type (exact hashes take every kind)."""

    @classmethod
    @abc.abstractmethod
    def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        """Hashes of the file; raise ``UnsupportedMedia`` when it cannot be read as ``kind``."""


class TextHasher(abc.ABC):
    """Mixin: the signal type can hash a text (posts, captions, manifestos, URLs found in text)."""

    @classmethod
    @abc.abstractmethod
    def hash_text(cls, text: str) -> list[HashResult]:
        """Hashes of the text; an empty list when it has nothing to hash (no URL in it, say)."""


class VariantHasher(FileHasher):
    """Mixin: the signal type can also hash flipped and rotated copies of a file, in one pass.

    Banks that opt in (``dihedral``) are matched against these variants too, which catches mirrored re-uploads.
    """

    @classmethod
    @abc.abstractmethod
    def hash_variants(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        """Hashes of the transformed copies, the untransformed one excluded."""

    @classmethod
    def hash_with_variants(cls, path: Path, kind: MediaKind) -> tuple[list[HashResult], list[HashResult]]:
        """``(hash_file, hash_variants)`` of one file; types that can, override it to read the file once."""
        return cls.hash_file(path, kind), cls.hash_variants(path, kind)


@dataclass(frozen=True, slots=True)
class FileHashes:
    """One file's hashes from one decode: its own, the alternates other tools compute of it, dihedral variants."""

    signals: list[HashResult]
    #: The same file as reference tools decode it, where their hash differs (PDQ: EXIF orientation ignored, a
    #: palette read as grey levels). Matched in every bank; never stored or shown as the file's hash.
    alternates: list[HashResult] = field(default_factory=list)
    #: Hashes of flipped and rotated copies, matched by dihedral banks only.
    variants: list[HashResult] = field(default_factory=list)
    #: The hash the reference tool (HMA's hasher) computes of the file, when it differs from ``signals``' (one of
    #: the alternates): what an HMA-compatible ``/h/hash`` answers.
    reference: HashResult | None = None
    #: The decoded picture, upright, RGB, at most ``picture_px`` on its longest side, when asked and the type decodes
    #: pictures: what a reviewer's preview is made from, so an upload is decoded once (and within the budget).
    picture: Image.Image | None = None


class AlternateHasher(FileHasher):
    """Mixin: other tools hash some files differently from this type (they decode them otherwise), and those hashes
    are what partners share; the type computes them too, from the same decode, so a partner's hash of the very
    file uploaded matches in an ordinary bank.
    """

    @classmethod
    @abc.abstractmethod
    def hash_with_alternates(cls, path: Path, kind: MediaKind, *, variants: bool = False,
                             picture_px: int = 0) -> FileHashes:
        """The file's hashes and its alternates (and, when asked and the type can, its dihedral variants and, with
        ``picture_px`` > 0, the decoded picture reduced to that size)."""
