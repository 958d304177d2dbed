"""Extensions from outside the package (``core/extensions.py``): a plug-in written here, in a temporary folder,
adds a signal type (the CRC-32 of a file) and a classifier kind (keywords); it is configured through
``BASTION_EXTENSIONS`` and the classifiers file, and used end to end: CLI, a real server, its own contract tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bastion.classifiers import registry as classifier_registry
from bastion.core import extensions
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.extensions import ExtensionError
from bastion.hashing import registry as signal_registry
from bastion.hashing.interfaces import HashResult
from bastion.hashing.services import hash_path
from bastion.matching import services
from bastion.matching.matcher import Matcher, Query
from bastion.web.app import create_app
from tests.factories.live import serve
from tests.factories.media import make_image

SRC = Path(__file__).resolve().parents[1] / "src"
PLUGIN = "acme_plugin"

PLUGIN_SOURCE = '''
"""A plug-in from outside Bastion: the CRC-32 of a file's bytes, and a classifier that scores texts by keywords."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from bastion.classifiers.interfaces import Accepts, Classifier, ClassifierContext, ClassifierError, Content
from bastion.core.extensions import Extension
from bastion.hashing.interfaces import (FileHasher, HashResult, IndexHit, InvalidSignalValue, MediaKind,
                                        SignalIndex, SignalType)


class ExactIndex(SignalIndex):
    def __init__(self) -> None:
        self._values: dict[int, str] = {}
        self._keys: dict[str, set[int]] = {}

    def add(self, key: int, value: str) -> None:
        self.remove(key)
        self._values[key] = value
        self._keys.setdefault(value, set()).add(key)

    def remove(self, key: int) -> None:
        value = self._values.pop(key, None)
        if value is not None:
            self._keys[value].discard(key)

    def query(self, value: str, threshold: int) -> list[IndexHit]:
        return [IndexHit(key, 0) for key in sorted(self._keys.get(value, ()))]

    def __len__(self) -> int:
        return len(self._values)


class Crc32Signal(SignalType, FileHasher):
    name = "crc32"

    @classmethod
    def validate(cls, value: str) -> str:
        v = value.strip().lower()
        if len(v) != 8 or any(c not in "0123456789abcdef" for c in v):
            raise InvalidSignalValue("a CRC-32 is 8 hex digits")
        return v

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return ExactIndex

    @classmethod
    def examples(cls) -> Sequence[str]:
        return ("cbf43926", "00000000", "ffffffff")

    @classmethod
    def accepts(cls, kind: MediaKind) -> bool:
        return True

    @classmethod
    def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        return [HashResult(cls.name, f"{zlib.crc32(path.read_bytes()):08x}")]


class KeywordClassifier(Classifier):
    kind = "keywords"

    def __init__(self, name: str, words: Sequence[str]) -> None:
        self.name = name
        self.words = tuple(w.lower() for w in words)

    @classmethod
    def configure(cls, entry: Mapping[str, Any], ctx: ClassifierContext) -> Self:
        unknown = sorted(set(entry) - {"kind", "name", "words"})
        if unknown:
            raise ClassifierError(f"unknown field {unknown[0]!r}")
        words = entry.get("words")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise ClassifierError("words must be a list of strings")
        return cls(str(entry.get("name", "keywords")), words)

    def score_names(self) -> Sequence[str]:
        return (self.name,)

    def accepts(self) -> frozenset[Accepts]:
        return frozenset({Accepts.TEXT})

    def classify(self, content: Content) -> dict[str, float]:
        text = content.text.lower()
        return {self.name: 1.0 if any(w in text for w in self.words) else 0.0}


BASTION_EXTENSION = Extension(signal_types=(Crc32Signal,), classifier_kinds=(KeywordClassifier,))
'''

# The plug-in's own tests, as its authors would write them: the contract base classes, nothing of Bastion's suite.
PLUGIN_TESTS = '''
import pytest

from acme_plugin import Crc32Signal, KeywordClassifier
from bastion.classifiers.interfaces import Classifier, ClassifierContext
from bastion.core.db import Database
from bastion.hashing.interfaces import InvalidSignalValue
from bastion.testing import ClassifierContract, SignalTypeContract


class TestCrc32(SignalTypeContract):
    signal_type = Crc32Signal
    extensions = ("acme_plugin",)


class TestKeywords(ClassifierContract):
    kind = "keywords"
    extensions = ("acme_plugin",)

    @pytest.fixture
    def classifier(self, tmp_path):
        ctx = ClassifierContext(Database(f"sqlite:///{tmp_path / 'unused.db'}"))
        return KeywordClassifier.configure({"kind": "keywords", "name": "slurs", "words": ["vermin"]}, ctx)


class LooseCrc32(Crc32Signal):
    """Broken on purpose: accepts anything, and is declared by no extension."""

    name = "crc32_loose"

    @classmethod
    def validate(cls, value):
        return value.strip().lower()


class TestLooseCrc32(SignalTypeContract):
    signal_type = LooseCrc32
    extensions = ("acme_plugin",)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plug-in's folder, on ``sys.path`` (as an installed package would be); the registries reset afterwards."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, PLUGIN, raising=False)
    yield folder
    extensions.reset()
    sys.modules.pop(PLUGIN, None)


def _env(db: Database, plugin: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "BASTION_DATABASE_URL": db.url, "PYTHONPATH": os.pathsep.join([str(plugin), str(SRC)]),
            "CI": "true", **extra}


def _bastion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_signal_type_and_a_classifier_from_outside_run_end_to_end(
        plugin: Path, db: Database, settings: Settings, tmp_path: Path,
        make_token: Callable[[Role], str]) -> None:
    upload = make_image(tmp_path / "known.jpg", seed=41, size=(320, 240))
    crc = f"{zlib.crc32(upload.read_bytes()):08x}"
    csv = tmp_path / "known.csv"
    csv.write_text(f"signal_type,value,category\ncrc32,{crc},terrorist_content\n")

    # Without the setting, Bastion does not know the type: the bank cannot even name it.
    plain = _env(db, plugin)
    refused = _bastion(plain, "bank", "create", "ACME", "--threshold", "crc32=0")
    assert refused.returncode == 1 and "unknown signal type 'crc32'" in refused.stderr

    # With it, the CLI creates the bank, imports the CSV and says where each type comes from.
    env = _env(db, plugin, BASTION_EXTENSIONS=PLUGIN)
    created = _bastion(env, "bank", "create", "ACME", "--threshold", "crc32=0")
    assert created.returncode == 0, created.stderr
    imported = _bastion(env, "bank", "import", "ACME", str(csv))
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 entries" in imported.stderr
    listed = [json.loads(line) for line in _bastion(env, "extensions", "--json").stdout.splitlines()]
    assert {"what": "signal type", "name": "crc32", "from": f"extension {PLUGIN!r}"} in listed
    assert {"what": "classifier kind", "name": "keywords", "from": f"extension {PLUGIN!r}"} in listed
    assert {"what": "signal type", "name": "pdq", "from": "bastion"} in listed

    # A real server with the setting, and a classifiers file using the plug-in's kind.
    classifiers = tmp_path / "classifiers.toml"
    classifiers.write_text('[[classifiers]]\nkind = "keywords"\nname = "hate_speech"\nwords = ["vermin"]\n')
    configured = Settings(**{**settings.__dict__, "extensions": (PLUGIN,), "classifiers_path": classifiers})
    platform = {"Authorization": f"Bearer {make_token(Role.PLATFORM)}"}
    with serve(create_app(configured, db=db)) as base, httpx.Client(base_url=base, timeout=30) as http:
        def post_file(path: str, **data: str) -> dict[str, object]:
            part = "media" if path == "/v1/content" else "file"
            with upload.open("rb") as f:
                r = http.post(path, data=data, files={part: (upload.name, f, "image/jpeg")}, headers=platform)
            assert r.status_code == 200, r.text
            return dict(r.json())

        hashed = post_file("/v1/hash")
        assert {"signal_type": "crc32", "value": crc} in hashed["signals"]  # type: ignore[operator]

        matched = post_file("/v1/match")
        crc_matches = [m for m in matched["matches"] if m["signal_type"] == "crc32"]  # type: ignore[attr-defined]
        assert [(m["bank"], m["category"], m["distance"]) for m in crc_matches] == [("ACME", "terrorist_content", 0)]

        by_value = http.post("/v1/match", json={"signal_type": "crc32", "value": crc.upper()}, headers=platform)
        assert by_value.status_code == 200, by_value.text
        assert [m["bank"] for m in by_value.json()["matches"]] == ["ACME"]
        bad = http.post("/v1/match", json={"signal_type": "crc32", "value": "xyz"}, headers=platform)
        assert bad.status_code == 422 and "a CRC-32 is 8 hex digits" in bad.text

        blocked = post_file("/v1/content", content_id="up-1", account_id="acct-1", account_age="30",
                            account_country="DE", content_type="image", text="")
        assert (blocked["verdict"], blocked["status"]) == ("block", "blocked")
        # the platform hears what was found, never the rule or bank (restricted-material hardening)
        assert blocked["reasons"] == ["known terrorist content, matched automatically"]

        scored = http.post("/v1/content", data={"content_id": "post-1", "account_id": "acct-2", "account_age": "30",
                                                "account_country": "DE", "content_type": "text",
                                                "text": "they are vermin"}, headers=platform)
        assert scored.status_code == 200, scored.text
        assert (scored.json()["verdict"], scored.json()["reasons"]) == (
            "review", ["likely hate speech, found by an automated classifier"])


def test_the_plugins_own_tests_run_the_contract_from_outside(plugin: Path) -> None:
    """Run as the plug-in's authors would, in their folder with none of Bastion's test suite: the contract base
    classes pass the good classes and fail the broken one, naming what it breaks."""
    (plugin / "test_acme_plugin.py").write_text(PLUGIN_TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(SRC)])}
    env.pop(extensions.SETTING, None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_acme_plugin.py"],
                         cwd=plugin, env=env, capture_output=True, text=True, timeout=300)
    failed = sorted(line.split("::", 1)[1].split(" ")[0] for line in run.stdout.splitlines()
                    if line.startswith("FAILED"))
    assert failed == ["TestLooseCrc32::test_invalid_values_are_refused", "TestLooseCrc32::test_is_declared"], run.stdout
    assert "2 failed, 21 passed" in run.stdout, run.stdout


def test_an_installed_entry_point_is_found_without_the_setting(plugin: Path) -> None:
    dist = plugin / "acme_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[bastion.extensions]\nacme = {PLUGIN}:BASTION_EXTENSION\n")
    loaded = extensions.activate(())
    assert [item.origin for item in loaded] == [f"entry point 'acme' ({PLUGIN}:BASTION_EXTENSION)"]
    assert signal_registry.get("crc32").__module__ == PLUGIN
    assert classifier_registry.get("keywords").__module__ == PLUGIN
    # Named in the setting too: the same manifest counts once, not as a collision with itself.
    assert len(extensions.activate((PLUGIN,))) == 1
    assert [t.name for t in signal_registry.signal_types()][-1] == "crc32"


def test_without_extensions_only_the_built_in_ones_are_in_force(plugin: Path) -> None:
    extensions.activate((PLUGIN,))
    assert "crc32" in signal_registry.BY_NAME
    extensions.reset()
    with pytest.raises(signal_registry.UnknownSignalType, match="unknown signal type 'crc32'"):
        signal_registry.get("crc32")
    assert "keywords" not in classifier_registry.BY_KIND
    assert signal_registry.signal_types() == signal_registry.BUILT_IN


def test_the_first_use_activates_what_the_environment_names(plugin: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that never called ``activate`` (a script using Bastion as a library) still sees the extensions."""
    extensions.reset()
    monkeypatch.setenv(extensions.SETTING, f" {PLUGIN} , ")
    image = make_image(tmp_path / "a.jpg", seed=3, size=(64, 64))
    assert {s.signal_type for s in hash_path(image).signals} >= {"crc32", "pdq", "sha256"}


def test_entries_of_a_type_whose_extension_is_gone_do_not_stop_the_index_refresh(
        plugin: Path, db: Database, admin: Principal) -> None:
    """A process started without the extension (a replica configured apart) skips those entries and goes on
    replaying the bank change log: the entries after them are matched."""
    extensions.reset()
    matcher = Matcher(db)
    matcher.load()
    assert "crc32" not in matcher.indexes
    extensions.activate((PLUGIN,))  # another process, with the extension, adds entries
    services.create_bank(db, "ACME", actor=admin)
    crc = services.add_entry(db, "ACME", services.NewEntry.parse("crc32", "cbf43926", "terrorist_content"),
                             actor=admin)
    md5 = services.add_entry(db, "ACME", services.NewEntry.parse("md5", "d41d8cd98f00b204e9800998ecf8427e",
                                                                 "terrorist_content"), actor=admin)
    services.remove_entry(db, "ACME", crc.id, actor=admin)
    assert matcher.refresh() == 4
    found = matcher.match([Query(HashResult("md5", "d41d8cd98f00b204e9800998ecf8427e"))])
    assert [m.entry_id for m in found] == [md5.id]


BAD_EXTENSIONS = [
    ("import sys; sys.exit(3)", "extension 'bad_ext': cannot import it (SystemExit: 3)"),
    ("X = 1",
     "extension 'bad_ext': the module has no BASTION_EXTENSION (set it to a bastion.core.extensions.Extension)"),
    ("BASTION_EXTENSION = {'signal_types': ()}",
     "extension 'bad_ext': BASTION_EXTENSION is a dict, not a bastion.core.extensions.Extension"),
    ("from bastion.core.extensions import Extension\nBASTION_EXTENSION = Extension()",
     "extension 'bad_ext': the manifest adds no signal type and no classifier kind"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import Crc32Signal\n"
     "BASTION_EXTENSION = Extension(signal_types=Crc32Signal)",
     "extension 'bad_ext': signal_types must be a tuple of classes, got <class 'acme_plugin.Crc32Signal'>"),
    ("from bastion.core.extensions import Extension\nBASTION_EXTENSION = Extension(signal_types=(dict,))",
     "extension 'bad_ext': <class 'dict'> is not a subclass of bastion.hashing.interfaces.SignalType"),
    ("from bastion.core.extensions import Extension\nfrom bastion.hashing.interfaces import SignalType\n"
     "class Half(SignalType):\n    name = 'half'\nBASTION_EXTENSION = Extension(signal_types=(Half,))",
     "extension 'bad_ext': signal type Half does not implement distance, examples, index_class, validate"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import Crc32Signal\n"
     "class Shouty(Crc32Signal):\n    name = 'CRC'\nBASTION_EXTENSION = Extension(signal_types=(Shouty,))",
     "extension 'bad_ext': signal type Shouty has an invalid name 'CRC' (2-32 of a-z, 0-9 and _, starting with a "
     "letter)"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import Crc32Signal\n"
     "class Wide(Crc32Signal):\n    name = 'wide'\n    default_threshold = 5\n"
     "BASTION_EXTENSION = Extension(signal_types=(Wide,))",
     "extension 'bad_ext': signal type 'wide' needs 0 <= default_threshold <= max_threshold (integers), got 5 and 0"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import Crc32Signal\n"
     "class Sha(Crc32Signal):\n    name = 'sha256'\nBASTION_EXTENSION = Extension(signal_types=(Sha,))",
     "extension 'bad_ext': signal type name 'sha256' is already declared by bastion (Sha256Signal)"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import Crc32Signal\n"
     "class Again(Crc32Signal):\n    pass\nBASTION_EXTENSION = Extension(signal_types=(Again,))",
     "extension 'bad_ext': signal type name 'crc32' is already declared by extension 'acme_plugin' (Crc32Signal)"),
    ("from bastion.core.extensions import Extension\nfrom acme_plugin import KeywordClassifier\n"
     "class Http(KeywordClassifier):\n    kind = 'http'\nBASTION_EXTENSION = Extension(classifier_kinds=(Http,))",
     "extension 'bad_ext': classifier kind 'http' is already declared by bastion (HttpClassifier)"),
    ("from bastion.core.extensions import Extension\nBASTION_EXTENSION = Extension(classifier_kinds=(int,))",
     "extension 'bad_ext': <class 'int'> is not a subclass of bastion.classifiers.interfaces.Classifier"),
]


@pytest.mark.parametrize(("source", "message"), BAD_EXTENSIONS, ids=[m.split(": ", 1)[1][:40]
                                                                    for _, m in BAD_EXTENSIONS])
def test_a_broken_extension_stops_the_start_naming_it_and_installs_nothing(
        plugin: Path, source: str, message: str, settings: Settings, db: Database) -> None:
    (plugin / "bad_ext.py").write_text(textwrap.dedent(source) + "\n")
    sys.modules.pop("bad_ext", None)
    try:
        extensions.activate((PLUGIN,))
        before = signal_registry.signal_types(), classifier_registry.kinds()
        with pytest.raises(ExtensionError) as raised:
            extensions.activate((PLUGIN, "bad_ext"))
        assert str(raised.value) == message
        assert (signal_registry.signal_types(), classifier_registry.kinds()) == before  # all or nothing
        with pytest.raises(ExtensionError, match="extension 'bad_ext'"):
            create_app(Settings(**{**settings.__dict__, "extensions": (PLUGIN, "bad_ext")}), db=db)
    finally:
        sys.modules.pop("bad_ext", None)


def test_a_broken_extension_is_one_line_in_the_cli(plugin: Path, db: Database) -> None:
    r = _bastion(_env(db, plugin, BASTION_EXTENSIONS=f"{PLUGIN},not-a-module"), "bank", "list")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "error: extension 'not-a-module': not a module name (BASTION_EXTENSIONS lists importable modules, comma "
        "separated)"]
