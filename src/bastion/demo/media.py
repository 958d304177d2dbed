"""Seeded, natural-looking synthetic media for tests and benchmarks.

Perceptual hashes behave badly on the media that is easy to synthesise (flat colours, pure noise), so the
images here imitate photographs: a smooth illumination field, soft-edged shapes at several scales,
mid-frequency texture and sensor-like grain. The same seed always gives the same pixels, so a test can rebuild
an image to make a modified copy of it.

Public helpers (imported by other suites, keep their names): ``make_image``, ``make_video``, plus the lower
level ``synth_array``, ``video_frames`` and ``write_video``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

Pixels = NDArray[np.uint8]

_BASE = 256  # shapes are drawn at this resolution, then upscaled: cheap at 12 MP and naturally soft


def synth_array(seed: int, size: tuple[int, int] = (640, 480), *, grain: float = 6.0) -> Pixels:
    """An RGB ``(height, width, 3)`` array that looks like a photograph to a perceptual hash."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = _scene(rng, (max(8, min(_BASE, w)), max(8, min(_BASE, h))))
    img = np.asarray(base.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    texture = _texture(rng, (w, h))
    img = img * (0.85 + 0.3 * texture[..., None])
    if grain > 0:
        img += rng.normal(0.0, grain, size=(h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _scene(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.zeros((h, w, 3), np.float32)
    for _ in range(3):  # low-frequency illumination: a few random plane waves per channel
        fx, fy = rng.uniform(-3, 3, 2) * np.pi / np.array([w, h])
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(fx * xx + fy * yy + phase)[..., None] * rng.uniform(20, 50, 3)
    field += rng.uniform(60, 190, 3)
    img = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 16))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * (w, h)
        ext = rng.uniform(0.05, 0.5, 2) * (w, h)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (x0, y0, x0 + ext[0], y0 + ext[1])
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return img.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(w, h) / 200)))


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> NDArray[np.float32]:
    """Mid-frequency texture in [0, 1): random noise at 1/8 scale, smoothly upscaled."""
    w, h = size
    small = rng.random((max(2, h // 8), max(2, w // 8)), dtype=np.float32)
    layer = Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(layer, dtype=np.float32)


def make_image(
    path: Path,
    seed: int,
    size: tuple[int, int] = (640, 480),
    fmt: str = "JPEG",
    *,
    quality: int = 90,
    mode: str = "RGB",
) -> Path:
    """Write a synthetic photograph; ``mode`` converts it first (``L``, ``CMYK``, ``RGBA``...)."""
    img = Image.fromarray(synth_array(seed, size))
    if mode != "RGB":
        img = img.convert(mode)
    options: dict[str, object] = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    img.save(path, format=fmt, **options)
    return path


def video_frames(
    seed: int,
    seconds: float,
    size: tuple[int, int] = (160, 120),
    *,
    fps: int = 10,
    scene_seconds: float = 2.0,
) -> Iterator[Pixels]:
    """Frames of a synthetic video: a new scene every ``scene_seconds``, slowly panning within a scene."""
    w, h = size
    margin = max(4, w // 8)
    n_frames = round(seconds * fps)
    frames_per_scene = max(1, round(scene_seconds * fps))
    scene: Pixels | None = None
    for i in range(n_frames):
        index, step = divmod(i, frames_per_scene)
        if step == 0 or scene is None:
            scene = synth_array(seed * 1000 + index, (w + margin, h), grain=2.0)
        dx = step * margin // frames_per_scene
        yield np.ascontiguousarray(scene[:, dx : dx + w])


def write_video(
    path: Path,
    frames: Iterable[Pixels],
    *,
    fps: int = 10,
    codec: str = "libx264",
    bit_rate: int | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """Encode RGB frames; ``size`` rescales them (a re-encode at another resolution)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.pix_fmt = "yuv420p"
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        first = True
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1])
            if first:
                stream.width, stream.height = frame.width, frame.height
                first = False
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_video(
    path: Path,
    seed: int,
    seconds: float = 8.0,
    size: tuple[int, int] = (160, 120),
    *,
    fps: int = 10,
    codec: str = "libx264",
    bit_rate: int | None = None,
) -> Path:
    """Write a synthetic MP4/MKV (container from the suffix) of ``seconds`` seconds."""
    frames = video_frames(seed, seconds, size, fps=fps)
    return write_video(path, frames, fps=fps, codec=codec, bit_rate=bit_rate)


def read_frames(path: Path) -> Iterator[Pixels]:
    """Decoded RGB frames of a video file."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def transcode(
    src: Path, dst: Path, *, size: tuple[int, int] | None = None, bit_rate: int | None = None, fps: int = 10
) -> Path:
    """Re-encode a video (another resolution, bitrate or container), as a re-upload would be."""
    return write_video(dst, read_frames(src), fps=fps, bit_rate=bit_rate, size=size)
