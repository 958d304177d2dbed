"""What kind of media a file is, sniffed from its first bytes (never from its name or a client's claim)."""

from __future__ import annotations

from pathlib import Path

from bastion.hashing.interfaces import MediaKind

_IMAGE_MAGIC: tuple[bytes, ...] = (
    # The shortest prefix each format is known by, so a damaged header still says "image" (and the file is then
    # reported unreadable), never "other" (which nothing decodes and nobody is told about).
    b"\xff\xd8",  # JPEG: start of image
    b"\x89PNG",
    b"GIF8",
    b"BM",  # BMP
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
)
_VIDEO_BRANDS = (b"ftyp",)  # MP4 / MOV / 3GP: 'ftyp' at offset 4
_VIDEO_MAGIC: tuple[bytes, ...] = (
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"FLV",
    b"\x00\x00\x01\xba",  # MPEG-PS
    b"\x00\x00\x01\xb3",  # MPEG video
)

HEAD_BYTES = 64


def sniff_bytes(head: bytes) -> MediaKind:
    """Classify a file from its first bytes."""
    if head.startswith(_IMAGE_MAGIC):
        return MediaKind.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaKind.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return MediaKind.VIDEO
    if head[4:8] in _VIDEO_BRANDS:
        brand = head[8:12]
        # HEIF/AVIF stills share the ISO box layout with MP4.
        return MediaKind.IMAGE if brand in (b"heic", b"heix", b"mif1", b"avif") else MediaKind.VIDEO
    if head.startswith(_VIDEO_MAGIC) or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47):
        return MediaKind.VIDEO
    if head and _looks_like_text(head):
        return MediaKind.TEXT
    return MediaKind.OTHER


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3
    return True


def sniff(path: Path) -> MediaKind:
    with path.open("rb") as f:
        return sniff_bytes(f.read(HEAD_BYTES))
