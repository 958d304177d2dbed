"""PDQ hash sets that look like real banks, for bench/matching.py (``--dataset clustered|natural``).

Uniformly random hashes are the friendliest case for multi-index hashing: every chunk value is equally likely, so
buckets are even and a miss touches almost nothing. Real banks differ in two ways, modelled here:

- **Clusters of near-duplicates.** A share of the rows (``cluster_share``, default half) comes in clusters of
  10-1,000 hashes (sizes log-uniform), every re-encode, resize and crop of one picture. How far an edit moves a
  hash is *measured*: Pillow edits (JPEG quality 30-90, half and quarter size, 2-10 % crops, brightness,
  contrast, blur, a logo box, greyscale) of camera-like scenes, hashed with Bastion's PDQ. Which bits flip is
  modelled the way PDQ flips them: a hash is the sign of a latent vector (PDQ: DCT coefficients against their
  median), an edit adds noise to it, so the bits near their threshold flip first and edits of one picture agree
  on which. Noise of scale s flips a bit with probability atan(s)/pi, so a measured distance d gives
  s = tan(pi d / 256).
- **Correlated bits** (``natural``). The latent vectors are not independent standard normals but a Gaussian
  copula fitted to PDQ hashes of 1,500 random crops (20-60 % of the area, anywhere) of 30 camera-like scenes:
  the per-bit means and the bit-bit correlations (latent correlation sin(pi r / 2), clipped to positive
  definite). These scenes turn out nearly independent (mean |r| 0.016, near the sampling floor), so
  ``factor_share`` adds a stress test on top: that share of every latent's variance comes from 8 factors common to
  all hashes, which skews every chunk's bucket sizes the way a bank dominated by one kind of picture would.

The scenes are ``bastion.demo.media.synth_array`` (smooth light, shapes, texture, sensor grain), not photographs:
the only pictures on this machine. Their hashes are more correlated than random ones, which is the direction that
matters; how close they come to a real bank's is not known (see docs/benchmarks.md).
"""

from __future__ import annotations

import io
import math
import statistics
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from bastion.demo.media import synth_array
from bastion.hashing.pdq import hash_rgb

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
_CHUNK = 65_536


def _pdq_bits(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    raw = bytes.fromhex(hash_rgb(np.ascontiguousarray(rgb)).hex())
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))


def _edits(img: Image.Image, rng: np.random.Generator) -> list[Image.Image]:
    w, h = img.size
    out = []
    for quality in (30, 50, 70, 90):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        out.append(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    out += [img.resize((w // 2, h // 2)), img.resize((w // 4, h // 4))]
    for share in (0.02, 0.05, 0.10):
        dx, dy = int(w * share * rng.random()), int(h * share * rng.random())
        out.append(img.crop((dx, dy, w - int(w * share) + dx, h - int(h * share) + dy)))
    out += [ImageEnhance.Brightness(img).enhance(0.8), ImageEnhance.Brightness(img).enhance(1.25),
            ImageEnhance.Contrast(img).enhance(1.3), img.filter(ImageFilter.GaussianBlur(1.5)),
            img.convert("L").convert("RGB")]
    logo = img.copy()
    ImageDraw.Draw(logo).rectangle((w - w // 6, h - h // 8, w - 8, h - 8), fill=(255, 255, 255))
    out.append(logo)
    return out


def measured_edit_distances(scenes: int = 12, seed: int = 7) -> npt.NDArray[np.int64]:
    """PDQ distance between a scene and each of its 16 Pillow edits, for ``scenes`` scenes."""
    rng = np.random.default_rng(seed)
    distances = []
    for s in range(scenes):
        img = Image.fromarray(synth_array(seed * 1000 + s, (640, 480)))
        base = _pdq_bits(np.asarray(img))
        distances += [int((_pdq_bits(np.asarray(e)) != base).sum()) for e in _edits(img, rng)]
    return np.array(distances, dtype=np.int64)


@dataclass
class Copula:
    """Latent Gaussian of PDQ bits: bit i is set when z_i > 0, z = mean + chol @ standard normal."""

    mean: F32
    chol: F32  # lower-triangular, chol @ chol.T = latent correlation
    #: A stress knob: this share of each latent's variance comes from 8 factors common to all hashes.
    factor_share: float = 0.0
    factors: F32 | None = None

    @classmethod
    def independent(cls) -> Copula:
        return cls(np.zeros(256, np.float32), np.eye(256, dtype=np.float32))

    @classmethod
    def fit(cls, bits: npt.NDArray[np.uint8]) -> Copula:
        b = bits.astype(np.float64)
        p = b.mean(axis=0).clip(0.01, 0.99)
        normal = statistics.NormalDist()
        mean = np.array([normal.inv_cdf(float(x)) for x in p])
        r = np.corrcoef(b, rowvar=False)
        r = np.nan_to_num(r)
        np.fill_diagonal(r, 1.0)
        latent = np.sin(np.pi * r / 2)
        vals, vecs = np.linalg.eigh(latent)
        latent = (vecs * vals.clip(1e-3)) @ vecs.T
        d = np.sqrt(np.diag(latent))
        latent = latent / np.outer(d, d)
        return cls(mean.astype(np.float32), np.linalg.cholesky(latent).astype(np.float32))

    def sample(self, rng: np.random.Generator, n: int) -> F32:
        z = rng.standard_normal((n, 256), dtype=np.float32) @ self.chol.T
        if self.factors is not None and self.factor_share > 0:
            z *= math.sqrt(1 - self.factor_share)
            z += math.sqrt(self.factor_share) * (rng.standard_normal((n, 8), dtype=np.float32) @ self.factors)
        z += self.mean
        return z

    def with_factors(self, share: float, rng: np.random.Generator) -> Copula:
        loadings = rng.standard_normal((8, 256)).astype(np.float32)
        loadings /= np.linalg.norm(loadings, axis=0)
        return Copula(self.mean, self.chol, share, loadings)


def natural_copula(crops: int = 1500, scenes: int = 30, seed: int = 11) -> tuple[Copula, dict[str, float]]:
    """Fit the copula to PDQ of random crops of camera-like scenes; also returns how correlated they are."""
    rng = np.random.default_rng(seed)
    pictures = [synth_array(seed * 1000 + s, (640, 480)) for s in range(scenes)]
    rows = []
    for i in range(crops):
        pic = pictures[i % scenes]
        h, w = pic.shape[:2]
        share = math.sqrt(rng.uniform(0.2, 0.6))
        ch, cw = int(h * share), int(w * share)
        y, x = int(rng.integers(0, h - ch)), int(rng.integers(0, w - cw))
        rows.append(_pdq_bits(pic[y : y + ch, x : x + cw]))
    bits = np.array(rows, dtype=np.uint8)
    r = np.corrcoef(bits.astype(np.float64), rowvar=False)
    off = np.abs(r[~np.eye(256, dtype=bool)])
    stats = {"bit_mean_abs_bias": float(np.abs(bits.mean(axis=0) - 0.5).mean()),
             "bit_corr_mean_abs": float(np.nanmean(off)), "bit_corr_p99_abs": float(np.nanpercentile(off, 99))}
    return Copula.fit(bits), stats


def _pack(z: F32) -> U8:
    return np.packbits(z > 0, axis=1)


def generate(
    size: int, copula: Copula, edit_distances: npt.NDArray[np.int64], rng: np.random.Generator,
    cluster_share: float = 0.5,
) -> tuple[U8, npt.NDArray[np.int64]]:
    """``size`` hashes: ``cluster_share`` of them in clusters of 10-1,000 edits, the rest distinct pictures; rows
    are shuffled. Also returns each row's cluster id (-1 for a distinct picture)."""
    sizes: list[int] = []
    clustered = int(size * cluster_share)
    while sum(sizes) < clustered:
        sizes.append(round(math.exp(rng.uniform(math.log(10), math.log(1000)))))
    if sizes:
        sizes[-1] -= sum(sizes) - clustered
        if sizes[-1] <= 0:
            sizes.pop()
    clustered = sum(sizes)
    hashes = np.empty((size, 32), dtype=np.uint8)
    cluster = np.full(size, -1, dtype=np.int64)
    pos = 0
    centres = copula.sample(rng, len(sizes)) if sizes else np.zeros((0, 256), np.float32)
    scales = np.tan(np.pi * edit_distances.clip(0, 120) / 256).astype(np.float32)
    for c, count in enumerate(sizes):
        noise = rng.standard_normal((count, 256), dtype=np.float32)
        noise *= rng.choice(scales, count)[:, None]
        noise += centres[c]
        hashes[pos : pos + count] = _pack(noise)
        cluster[pos : pos + count] = c
        pos += count
    while pos < size:
        n = min(_CHUNK, size - pos)
        hashes[pos : pos + n] = _pack(copula.sample(rng, n))
        pos += n
    order = rng.permutation(size)
    return hashes[order], cluster[order]
