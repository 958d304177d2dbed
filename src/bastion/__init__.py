"""Bastion: an open-source trust-and-safety platform."""

import os

# Hashing multiplies small matrices (PDQ's 64x64 DCT). OpenBLAS would run each on a pool of threads that then
# spin-wait: on a server that already handles uploads in parallel this costs 2-3x the CPU per hash (measured:
# 7.7 ms against 2.9 ms of CPU per 960x720 JPEG). Set before numpy is first imported; an operator's own value wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
