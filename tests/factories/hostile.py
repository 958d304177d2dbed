"""Hostile media: small files that are expensive to decode, written without ever holding their pixels."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, side: int = 12_000) -> Path:
    """A greyscale PNG of ``side`` x ``side`` black pixels: a few hundred KB that decode to ``side ** 2`` bytes or
    more. Rows are compressed as they are made, so writing it costs one row of memory."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte, then the row
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def long_video(path: Path, seconds: int = 7260, side: int = 64) -> Path:
    """An H.264 video of ``seconds`` seconds in a few KB: one frame a minute, so it is quick to write, while its
    header says how long it runs (what a budget is checked against before decoding)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(1, 60))
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        for i in range(seconds // 60 + 1):
            frame = av.VideoFrame.from_ndarray(np.full((side, side, 3), (i * 7) % 255, dtype=np.uint8),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
