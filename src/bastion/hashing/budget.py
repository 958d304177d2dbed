"""What one file may cost to decode, and how many decodes run at once.

A small file can be very expensive: a 420 KB PNG of 12,000 x 12,000 pixels decodes to 432 MB, and a 200 KB video of
fifteen minutes of static 4K frames takes seconds of CPU, because every frame is decoded whatever it holds. So each
file is checked against a budget before its pixels are decoded (from its header: dimensions, duration, frame rate)
and again while they are (a header can lie), and decodes wait for one of a few slots. A file over the budget is
refused with ``MediaOverBudget``, which names the setting to raise; nothing is hashed from part of it, so content
cannot hide past the point where hashing stopped.

The budget comes from the settings (``MediaBudget.from_settings``) through ``configure``, called when an app starts;
processes that never call it (the CLI) use the defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, cast

from bastion.core.config import Settings
from bastion.hashing.interfaces import UnsupportedMedia

#: Decodes of more pixels than this hand their memory back to the system afterwards (``malloc_trim``).
_TRIM_AFTER_PIXELS: Final = 4_000_000


class MediaOverBudget(UnsupportedMedia):
    """A file that would cost more to decode than the budget allows; ``setting`` is the variable that sets it."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(f"{message} ({setting})")
        self.setting = setting


@dataclass(frozen=True)
class MediaBudget:
    """Limits per file. The defaults take any photo a phone takes and about an hour of ordinary video."""

    #: Decoded pixels of an image (after JPEG's reduced decoding): 50 MP, well under Pillow's own bomb limit.
    max_image_pixels: int = 50_000_000
    #: Seconds of video, from its header and as decoded.
    max_video_seconds: float = 3600.0
    #: Frames decoded from one video (an hour at 60 frames a second).
    max_video_frames: int = 216_000
    #: Pixels decoded from one video, all frames together: about an hour of 720p at 30 frames a second, 27
    #: minutes of 1080p, 7 minutes of 4K. Decoding cost follows this number, not the file's size.
    max_video_pixels: int = 100_000_000_000
    #: Images decoded at once in this process; others wait for a slot.
    image_decodes: int = 4
    #: Videos decoded at once in this process (each uses several FFmpeg threads).
    video_decodes: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaBudget:
        return cls(max_image_pixels=settings.max_image_pixels, max_video_seconds=float(settings.max_video_seconds),
                   max_video_frames=settings.max_video_frames, max_video_pixels=settings.max_video_pixels,
                   image_decodes=settings.image_decodes, video_decodes=settings.video_decodes)

    def check_image(self, width: int, height: int, what: str = "the image") -> None:
        """An image, or one video frame: what one decode holds in memory at once."""
        if width * height > self.max_image_pixels:
            raise MediaOverBudget(f"{what} decodes to {width:,} x {height:,} = {width * height:,} pixels; "
                                  f"this server decodes at most {self.max_image_pixels:,}",
                                  "BASTION_MAX_IMAGE_PIXELS")

    def check_video_seconds(self, seconds: float) -> None:
        if seconds > self.max_video_seconds:
            raise MediaOverBudget(f"the video runs past {seconds:,.0f} seconds; this server decodes at most "
                                  f"{self.max_video_seconds:,.0f}", "BASTION_MAX_VIDEO_SECONDS")

    def check_video_frames(self, frames: int) -> None:
        if frames > self.max_video_frames:
            raise MediaOverBudget(f"the video has more than {frames - 1:,} frames; this server decodes at most "
                                  f"{self.max_video_frames:,}", "BASTION_MAX_VIDEO_FRAMES")

    def check_video_pixels(self, pixels: int) -> None:
        if pixels > self.max_video_pixels:
            raise MediaOverBudget(f"the video decodes to more than {pixels:,} pixels in all; this server decodes "
                                  f"at most {self.max_video_pixels:,}", "BASTION_MAX_VIDEO_PIXELS")


_lock = threading.Lock()
_budget = MediaBudget()
_image_slots = threading.BoundedSemaphore(_budget.image_decodes)
_video_slots = threading.BoundedSemaphore(_budget.video_decodes)


def configure(budget: MediaBudget) -> None:
    """Use ``budget`` in this process from now on (decodes already waiting keep their old slots)."""
    global _budget, _image_slots, _video_slots
    if budget.image_decodes < 1 or budget.video_decodes < 1:
        raise ValueError("at least one image and one video decode must be allowed at a time")
    with _lock:
        if budget.image_decodes != _budget.image_decodes:
            _image_slots = threading.BoundedSemaphore(budget.image_decodes)
        if budget.video_decodes != _budget.video_decodes:
            _video_slots = threading.BoundedSemaphore(budget.video_decodes)
        _budget = budget


def current() -> MediaBudget:
    return _budget


@contextmanager
def image_slot() -> Iterator[MediaBudget]:
    """Hold one of the image decode slots (waiting for one if all are taken); yields the budget to check against."""
    slots = _image_slots
    with slots:
        yield _budget


@contextmanager
def video_slot() -> Iterator[MediaBudget]:
    """Hold one of the video decode slots; yields the budget to check against."""
    slots = _video_slots
    with slots:
        yield _budget


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, where there is one: freed image buffers otherwise stay in the process's arenas
    (one per thread), so a burst of large decodes kept gigabytes after it ended."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return cast("Callable[[int], int] | None", getattr(ctypes.CDLL(name), "malloc_trim", None))
    except OSError:
        return None


_TRIM = _malloc_trim()


def give_back(pixels: int) -> None:
    """After a decode of ``pixels``: return freed memory to the system when it was a large one."""
    if _TRIM is not None and pixels >= _TRIM_AFTER_PIXELS:
        _TRIM(0)
