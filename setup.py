"""Builds the compiled PDQ multi-index-hashing kernel; all other package metadata is in pyproject.toml."""

from __future__ import annotations

import platform

from setuptools import Extension, setup

_ARGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-fno-strict-aliasing"]
if platform.machine().lower() in ("x86_64", "amd64"):
    # Hardware popcount: every x86-64 CPU sold since 2008 has it; without it the distance check is ~3x slower.
    _ARGS.append("-mpopcnt")

setup(
    ext_modules=[
        Extension("bastion.hashing._mih", ["src/bastion/hashing/_mih.c"], extra_compile_args=_ARGS),
    ],
)
