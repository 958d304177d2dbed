"""Test media comes from the same synthesiser as the demo (``bastion.demo.media``): one way to make it."""

from bastion.demo.media import (
    make_image,
    make_video,
    read_frames,
    synth_array,
    transcode,
    video_frames,
    write_video,
)

__all__ = ["make_image", "make_video", "read_frames", "synth_array", "transcode", "video_frames", "write_video"]
