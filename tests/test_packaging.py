"""Every data file the code reads must ship in the wheel, not only in a source checkout.

An editable install reads files straight from ``src/``, so a file missing from ``package-data`` passes every test
here and breaks ``pip install .`` (as the minors rules once did, for the README's first command).
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bastion"
#: C sources the build compiles, and what it compiles them to; not data
BUILD_SOURCES = {".c", ".h", ".so", ".pyd"}


def test_every_data_file_is_named_in_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["bastion"]
    data_files = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc", *BUILD_SOURCES} and "__pycache__" not in path.parts
    ]
    assert data_files, "the package has data files; the glob found none"
    missing = [name for name in data_files if not any(fnmatch(name, pattern) for pattern in patterns)]
    assert missing == [], f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
