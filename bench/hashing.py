#!/usr/bin/env python
"""Hashing benchmark: Bastion's PDQ fast path against the full-decode baseline, on one core.

Baseline: ``hash_image_full_decode``, i.e. ``pdqhash.compute`` over a fully Pillow-decoded RGB image, which is
what HMA / ThreatExchange's ``pdq_from_file`` do (bit for bit; the tests check it). Bastion:
``PdqSignal.hash_file`` (reduced JPEG decode + PDQ's filter as block-integrated matrices, see ``pdq.py``), and
what an upload costs, ``PdqSignal.hash_with_alternates`` (the same decode also hashed as reference tools read the
file: for ``12mp_exif6``, phone photos with EXIF orientation 6, the un-rotated hash too).

Photos are synthesised once into ``bench/data/`` (git-ignored): camera-like content (smooth light, shapes,
texture and sensor grain, ~4.6 MB per 12 MP at quality 90) at 4000x3000, 800x600 and 640x480. The accuracy
section hashes further varied images in memory (sizes 640 px to 12 MP, JPEG quality 70-98, 4:4:4 and 4:2:0,
contrast down to near-flat) and reports how far the fast hash is from the full-decode one.

Progress goes to stderr, a table to stdout, and the last stdout line is one JSON object with every figure.

    python bench/hashing.py [--count 10] [--accuracy 120] [--seed 1]
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy / Pillow load their thread pools; then pin the process to one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from bastion.demo.media import synth_array  # noqa: E402
from bastion.hashing.interfaces import MediaKind  # noqa: E402
from bastion.hashing.pdq import PdqSignal, hash_image_full_decode  # noqa: E402

DATA = ROOT / "bench" / "data"
SIZES: dict[str, tuple[int, int]] = {"12mp": (4000, 3000), "800x600": (800, 600), "640x480": (640, 480)}
#: Phone photos held upright by their EXIF (orientation 6): Bastion also hashes them as stored, for partners'
#: tools that ignore the tag (an alternate, ``docs/interop.md``).
ORIENTED: dict[str, tuple[int, int]] = {"12mp_exif6": (4000, 3000)}
GRAIN = 10.0  # sensor-like noise: a 12 MP frame at quality 90 comes out at ~4.6 MB, like a phone photo
MIN_SECONDS = 1.5  # each timing loop repeats the image set until it has run at least this long


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def photos(label: str, size: tuple[int, int], count: int, orientation: int = 1) -> list[Path]:
    """The benchmark's photos of one size, generated on first use (with that EXIF orientation, if not 1)."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = []
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    for n in range(count):
        path = DATA / f"{label}_{n:03d}.jpg"
        if not path.exists():
            log(f"generating {path.name}")
            Image.fromarray(synth_array(10_000 + 100 * n + len(label), size, grain=GRAIN)).save(
                path, "JPEG", quality=90, exif=exif.tobytes()
            )
        paths.append(path)
    return paths


def fast(path: Path) -> tuple[str, int]:
    (result,) = PdqSignal.hash_file(path, MediaKind.IMAGE)
    return result.value, result.quality or 0


def upload(path: Path) -> tuple[str, int]:
    """What an upload costs: the hash and its alternates (the file as reference tools read it), one decode."""
    hashes = PdqSignal.hash_with_alternates(path, MediaKind.IMAGE)
    return hashes.signals[0].value, hashes.signals[0].quality or 0


def rate(hasher: Callable[[Path], tuple[str, int]], paths: Sequence[Path]) -> float:
    """Images per second, repeating the set until ``MIN_SECONDS`` have passed (after one warm-up pass)."""
    for path in paths:
        hasher(path)
    done, start = 0, time.perf_counter()
    while True:
        for path in paths:
            hasher(path)
        done += len(paths)
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return done / elapsed


def bit_distances(paths: Sequence[Path]) -> tuple[list[int], int]:
    """Fast-vs-full distances of the images whose full-decode quality is >= 80, and how many were not."""
    distances, skipped = [], 0
    for path in paths:
        reference, quality = hash_image_full_decode(path)
        if quality < 80:
            skipped += 1
            continue
        distances.append(PdqSignal.distance(fast(path)[0], reference))
    return distances, skipped


def speed_section(count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, size in [*SIZES.items(), *ORIENTED.items()]:
        paths = photos(label, size, count, orientation=6 if label in ORIENTED else 1)
        log(f"{label}: timing {len(paths)} photos")
        ours = rate(fast, paths)
        with_alternates = rate(upload, paths)
        baseline = rate(hash_image_full_decode, paths)
        distances, skipped = bit_distances(paths)
        out[label] = {
            "size": f"{size[0]}x{size[1]}",
            "images": len(paths),
            "mean_file_bytes": round(statistics.mean(p.stat().st_size for p in paths)),
            "bastion_images_per_s": round(ours, 2),
            "bastion_with_alternates_per_s": round(with_alternates, 2),
            "baseline_images_per_s": round(baseline, 2),
            "speedup": round(ours / baseline, 2),
            "max_bits": max(distances, default=0),
            "mean_bits": round(statistics.mean(distances), 2) if distances else 0.0,
            "quality_below_80": skipped,
        }
    return out


def accuracy_section(count: int, seed: int) -> dict[str, Any]:
    """Fast vs full on varied images, for the PDQ README's rule (within 10 bits when quality >= 80)."""
    rng = np.random.default_rng(seed)
    shapes = [(640, 480), (1024, 768), (1280, 720), (1600, 1200), (1920, 1080), (2048, 1536), (3000, 4000),
              (4000, 3000), (4032, 2268), (801, 1203)]
    distances: list[int] = []
    low_quality: list[int] = []  # distances of images below quality 80: outside the rule, reported anyway
    worst: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jpg"
        for n in range(count):
            size = shapes[n % len(shapes)]
            contrast = float(rng.choice([1.0, 0.7, 0.5, 0.35, 0.15]))
            quality = int(rng.integers(70, 99))
            subsampling = int(rng.choice([0, 2]))
            pixels = synth_array(50_000 + n, size, grain=float(rng.uniform(2, 12))).astype(np.float32)
            pixels = np.clip(128 + (pixels - 128) * contrast, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "JPEG", quality=quality, subsampling=subsampling)
            path.write_bytes(buf.getvalue())
            reference, ref_quality = hash_image_full_decode(path)
            d = PdqSignal.distance(fast(path)[0], reference)
            if ref_quality < 80:
                low_quality.append(d)
                continue
            distances.append(d)
            if d >= worst.get("bits", -1):
                worst = {"bits": d, "size": f"{size[0]}x{size[1]}", "jpeg_quality": quality,
                         "pdq_quality": ref_quality}
            if (n + 1) % 20 == 0:
                log(f"accuracy: {n + 1}/{count}")
    return {
        "images": count,
        "quality_ge_80": len(distances),
        "quality_below_80": len(low_quality),
        "quality_below_80_max_bits": max(low_quality, default=0),
        "max_bits": max(distances, default=0),
        "mean_bits": round(statistics.mean(distances), 2) if distances else 0.0,
        "histogram": {str(b): distances.count(b) for b in sorted(set(distances))},
        "worst": worst,
    }


def main(argv: Sequence[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--count", type=int, default=10, help="photos per size (default 10)")
    parser.add_argument("--accuracy", type=int, default=120, help="varied images for the accuracy check")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    speed = speed_section(args.count)
    accuracy = accuracy_section(args.accuracy, args.seed) if args.accuracy > 0 else {}
    print(f"{'size':>10} {'bastion/s':>10} {'+alternates/s':>14} {'baseline/s':>11} {'ratio':>7} {'max bits':>9} "
          f"{'mean bits':>10}")
    for label, row in speed.items():
        print(f"{label:>10} {row['bastion_images_per_s']:>10.1f} {row['bastion_with_alternates_per_s']:>14.1f} "
              f"{row['baseline_images_per_s']:>11.1f} "
              f"{row['speedup']:>6.1f}x {row['max_bits']:>9} {row['mean_bits']:>10.2f}")
    if accuracy:
        print(f"accuracy: {accuracy['quality_ge_80']} images of quality >= 80, "
              f"max {accuracy['max_bits']} bits, mean {accuracy['mean_bits']}")
    goal = speed["12mp"]["speedup"] >= 10 and all(r["speedup"] >= 1 for r in speed.values()) and all(
        r["max_bits"] <= 10 for r in speed.values()) and accuracy.get("max_bits", 0) <= 10
    print(json.dumps({
        "bench": "hashing",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, 1 used",
        "python": platform.python_version(),
        "baseline": "hash_image_full_decode (pdqhash over a full Pillow decode, as HMA / pdq_from_file)",
        "sizes": speed,
        "accuracy": accuracy,
        "goal_met": goal,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
