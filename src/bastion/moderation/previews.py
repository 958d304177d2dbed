"""What a reviewer is shown of held media: a small JPEG made at upload, and its blurred, greyscale form.

The blurred form is made on the server, so the browser of a reviewer who never reveals never receives the clear
image at all; for child-abuse queues this is the point. An image's preview is made from the pixels hashing already
decoded, within its budget (``hash_path(..., picture_px=PREVIEW_PX)``): an upload is decoded once. A video becomes
a sheet of up to four frames spread over its length. Previews are courtesy: media that will not decode for a
preview was still hashed and judged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

from bastion.hashing.interfaces import MediaKind
from bastion.hashing.services import FileSignals

#: Longest side of a preview, in pixels: enough to judge, small enough to keep for every held upload.
PREVIEW_PX = 480
SHEET_FRAMES = 4
JPEG_QUALITY = 75
#: Blur radius relative to the preview's longest side: shapes stay, details do not.
BLUR_FRACTION = 0.04


@dataclass(frozen=True)
class Preview:
    jpeg: bytes
    width: int
    height: int


def make_preview(media: FileSignals) -> Preview | None:
    """The preview of hashed media: an image's from the picture hashing kept (none if it was not asked for one),
    a video's from a sheet of its frames."""
    try:
        if media.kind is MediaKind.IMAGE:
            return _jpeg(media.picture) if media.picture is not None else None
        if media.kind is MediaKind.VIDEO:
            return _video_preview(media.path)
    except Exception:  # a preview is a courtesy: hashing has accepted the file already
        return None
    return None


def blurred(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as img:
        grey = ImageOps.grayscale(img)
        radius = max(4.0, BLUR_FRACTION * max(grey.size))
        return _jpeg(grey.filter(ImageFilter.GaussianBlur(radius))).jpeg


def _jpeg(img: Image.Image) -> Preview:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=JPEG_QUALITY)
    return Preview(out.getvalue(), img.width, img.height)


def _video_preview(path: Path) -> Preview | None:
    import av

    frames: list[Image.Image] = []
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        due = [duration * k / SHEET_FRAMES for k in range(SHEET_FRAMES)]
        for frame in container.decode(stream):
            at = float(frame.time or 0.0)
            if due and at + 1e-6 >= due[0]:
                image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                image.thumbnail((PREVIEW_PX // 2, PREVIEW_PX // 2))
                frames.append(image)
                due.pop(0)
                while due and at + 1e-6 >= due[0]:  # a short video: fewer distinct frames than slots
                    due.pop(0)
            if not due:
                break
    if not frames:
        return None
    w, h = frames[0].size
    cols = min(2, len(frames))
    rows = (len(frames) + cols - 1) // cols
    sheet = Image.new("RGB", (w * cols, h * rows), "black")
    for i, still in enumerate(frames):
        sheet.paste(still, ((i % cols) * w, (i // cols) * h))
    return _jpeg(sheet)
