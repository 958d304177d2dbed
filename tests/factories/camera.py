"""Files as cameras, phones and image editors write them: EXIF orientation, CMYK, palettes, 16-bit, animation.

Every picture is synthetic (``synth_array``: smooth light, shapes, texture and sensor grain), not a real
photograph; what is real is the container: the EXIF tags a phone writes, Pillow's CMYK, progressive and palette
encoders, and a 16-bit PNG written chunk by chunk (Pillow cannot write 48-bit RGB).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from tests.factories.media import synth_array

#: EXIF tags a phone camera writes beside the orientation.
_MAKE, _MODEL, _SOFTWARE, _DATETIME, _ORIENTATION = 0x010F, 0x0110, 0x0131, 0x0132, 0x0112


def scene(seed: int, size: tuple[int, int]) -> Image.Image:
    """A camera-like RGB picture (synthetic), ``size`` = (width, height)."""
    return Image.fromarray(synth_array(seed, size, grain=6.0))


def phone_jpeg(path: Path, orientation: int, *, seed: int = 5, size: tuple[int, int] = (2016, 1512)) -> Path:
    """A JPEG as a phone stores it: the sensor's landscape pixels, and the way to hold them in the EXIF."""
    exif = Image.Exif()
    exif[_MAKE], exif[_MODEL], exif[_SOFTWARE] = "Google", "Pixel 7", "HDR+ 1.0.540104767zd"
    exif[_DATETIME] = "2026:11:30 14:02:11"
    exif[_ORIENTATION] = orientation
    scene(seed, size).save(path, "JPEG", quality=88, exif=exif.tobytes())
    return path


def png16_rgb(path: Path, pixels: np.ndarray) -> Path:
    """A 48-bit RGB PNG (16 bits a channel) of 8-bit ``pixels`` scaled to the 16-bit range."""
    height, width, _ = pixels.shape
    wide = (pixels.astype(">u2") * 257).reshape(height, width * 3)
    raw = b"".join(b"\x00" + row.tobytes() for row in wide)  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                     + chunk(b"IEND", b""))
    return path


def _frames(base: Image.Image) -> list[Image.Image]:
    return [base, base.rotate(25), base.rotate(50)]


def _palette(base: Image.Image, colours: int = 256) -> Image.Image:
    return base.convert("P", palette=Image.Palette.ADAPTIVE, colors=colours)


def _palette_alpha(path: Path, base: Image.Image) -> None:
    img = _palette(base, 255)
    img.info["transparency"] = 0
    img.save(path, "PNG")


def _rgba(path: Path, base: Image.Image) -> None:
    pixels = np.array(base.convert("RGBA"))
    pixels[: pixels.shape[0] // 5, :, 3] = 0  # a transparent band: its colours are still in the file
    Image.fromarray(pixels).save(path, "PNG")


def _icc_jpeg(path: Path, base: Image.Image) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    base.save(path, "JPEG", quality=90, icc_profile=profile)


#: name -> (file suffix, writer of a file of that kind from an RGB picture).
KINDS: dict[str, tuple[str, Callable[[Path, Image.Image], None]]] = {
    "cmyk_jpeg": ("jpg", lambda p, b: b.convert("CMYK").save(p, "JPEG", quality=90)),
    "progressive_jpeg": ("jpg", lambda p, b: b.save(p, "JPEG", quality=90, progressive=True)),
    "icc_profile_jpeg": ("jpg", _icc_jpeg),
    "greyscale_jpeg": ("jpg", lambda p, b: b.convert("L").save(p, "JPEG", quality=90)),
    "palette_png": ("png", lambda p, b: _palette(b).save(p, "PNG")),
    "palette_alpha_png": ("png", _palette_alpha),
    "rgba_png": ("png", _rgba),
    "greyscale_alpha_png": ("png", lambda p, b: b.convert("LA").save(p, "PNG")),
    "png_16_bit_rgb": ("png", lambda p, b: png16_rgb(p, np.asarray(b))),
    "bilevel_png": ("png", lambda p, b: b.convert("1").save(p, "PNG")),
    "gif": ("gif", lambda p, b: b.save(p, "GIF")),
    "animated_gif": ("gif", lambda p, b: b.save(p, "GIF", save_all=True, append_images=_frames(b)[1:],
                                                duration=100, loop=0)),
    "animated_webp": ("webp", lambda p, b: b.save(p, "WEBP", save_all=True, append_images=_frames(b)[1:],
                                                  duration=100, quality=90)),
}


def file_of_kind(directory: Path, kind: str, *, seed: int = 12, size: tuple[int, int] = (1200, 900)) -> Path:
    suffix, write = KINDS[kind]
    path = directory / f"{kind}.{suffix}"
    write(path, scene(seed, size))
    return path


def with_display_rotation(path: Path) -> Path:
    """Mark an MP4 as a phone marks a portrait recording: frames stored sideways, and a display matrix (in the
    track header) that turns them a quarter clockwise to show them upright."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    # After the box type: version and flags, 2 times, track id, reserved, duration, 8 reserved, layer, group,
    # volume, reserved; then the 3x3 matrix (16.16 fixed point, the last column 2.30).
    matrix = box + 4 + 4 + (8 * 2 + 4 + 4 + 8 if version == 1 else 4 * 2 + 4 + 4 + 4) + 8 + 2 + 2 + 2 + 2
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path
