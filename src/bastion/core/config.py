"""Settings, read once from the environment (``BASTION_*``) so every process of a deployment agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bastion.core.extensions import SETTING as EXTENSIONS_SETTING
from bastion.core.extensions import names_from
from bastion.core.sealing import Sealer, SealError, decode_key, load_or_create_key

DEFAULT_DATABASE_URL = "sqlite:///./bastion.db"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise SystemExit(f"{name} must be a positive integer, got {value}")
    return value


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise SystemExit(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _minutes(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        minutes = tuple(sorted(int(part) for part in raw.split(",")))
    except ValueError:
        raise SystemExit(f"{name} must be minutes separated by commas (e.g. 15,45,55), got {raw!r}") from None
    if not all(0 < m < 60 for m in minutes):
        raise SystemExit(f"{name}: each step must be between 1 and 59 minutes")
    return minutes


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    #: Largest upload accepted by /v1/hash, /v1/match and the console (bytes).
    max_upload_bytes: int = 64 * 1024 * 1024
    #: Bank lookups (``/v1/match``, the console's match page) per token or console user per minute, in bursts up to
    #: the same number (``BASTION_MATCH_RATE_PER_MINUTE``; per process; 0: no limit). Intake is not counted.
    match_rate_per_minute: int = 120
    #: How often each process pulls the bank change log into its in-memory indexes (seconds).
    index_refresh_seconds: float = 0.25
    #: Console sessions expire after this many seconds without use.
    session_ttl_seconds: int = 8 * 3600
    #: Where uploads are spooled while being hashed (each process in its own directory under it, swept at start-up
    #: when its process is gone); never kept after the request. The system's temporary directory when unset.
    spool_dir: Path | None = None
    #: Where the PDQ index's memory-mapped snapshot lives (``BASTION_INDEX_SNAPSHOT_DIR``): read at start-up, then
    #: the change log is replayed from it; written again when the process stops cleanly. Unset: no snapshot.
    index_snapshot_dir: Path | None = None
    #: What one file may cost to decode (``hashing/budget.py``): pixels of an image or a video frame, seconds,
    #: frames and pixels of a video; beyond, it is refused (413) naming the setting. And decodes run at once.
    max_image_pixels: int = 50_000_000
    max_video_seconds: int = 3600
    max_video_frames: int = 216_000
    max_video_pixels: int = 100_000_000_000
    image_decodes: int = 4
    video_decodes: int = 2
    #: Whether the console sets the Secure flag on cookies (off for http://localhost).
    secure_cookies: bool = False
    #: Console logins (``core/auth/throttle.py``): failures of one account, and from one address, before each
    #: further failure locks it for twice as long as the last (1 s, 2 s, 4 s...), up to the cap (seconds).
    login_account_attempts: int = 5
    login_address_attempts: int = 20
    login_lockout_max_seconds: int = 900
    #: Password checks (argon2id, 64 MiB each) running at once in one process; one more is answered 503 at once.
    login_max_concurrent: int = 4
    #: Key of the audit chain's checkpoints (``bastion audit checkpoint``; base64 of 32 bytes). Never logged.
    audit_key: str = field(default="", repr=False)
    #: Where the audit key is kept when ``audit_key`` is unset; created (mode 0600) on first use.
    audit_key_file: Path = Path("bastion-audit.key")
    #: The platform's moderation policy (TOML); the package's default policy when unset.
    policy_path: Path | None = None
    #: The minors interaction rules file (``BASTION_MINORS_RULES``); Bastion's default rules when unset.
    minors_rules_path: Path | None = None
    #: Where moderation actions are sent (the platform's webhook); nothing is sent when unset.
    platform_webhook_url: str | None = None
    #: HMAC key that signs webhooks. Never logged.
    webhook_secret: bytes = field(default=b"", repr=False)
    #: How often the outbox worker looks for messages to deliver (seconds).
    outbox_interval_seconds: float = 0.5
    #: Which classifiers score uploads (TOML, ``classifiers/registry.py``; ``BASTION_CLASSIFIERS``); none if unset.
    classifiers_path: Path | None = None
    #: Bearer token sent to HTTP classifiers (``BASTION_CLASSIFIER_TOKEN``). Never logged.
    classifier_token: str = field(default="", repr=False)
    #: Modules adding signal types and classifier kinds (``BASTION_EXTENSIONS=acme_hashes,acme_models``; installed
    #: packages' ``bastion.extensions`` entry points are added too), checked at start-up (``core/extensions.py``).
    extensions: tuple[str, ...] = ()
    #: Key that encrypts kept media at rest (base64 of 32 bytes; ``BASTION_MEDIA_KEY``). Never logged.
    media_key: str = field(default="", repr=False)
    #: Where the media key is kept when ``media_key`` is unset; created (mode 0600) on first use.
    media_key_file: Path = Path("bastion-media.key")
    #: Days the sealed preview of a published upload is kept for a later notice or reach review (``0``: none kept;
    #: held, blocked and removed content keeps its preview regardless).
    published_preview_days: int = 90
    #: Removal orders (TCO): the contact point's Ed25519 key for answers (``BASTION_ORDERS_SIGNING_KEY``). Never logged.
    orders_signing_key: str = field(default="", repr=False)
    #: Who answers orders (Annex II/III section C), and in which Member State the platform is established.
    orders_provider: str = "Bastion platform"
    orders_member_state: str = "IE"
    orders_contact_email: str = "contact-point@example.invalid"
    #: Minutes into the one-hour clock at which people are alerted (``BASTION_ORDERS_ESCALATION_MINUTES=15,45,55``).
    orders_escalation_minutes: tuple[int, ...] = (15, 45, 55)
    #: Where escalations are sent (a webhook, HMAC-signed); events only when unset.
    orders_escalation_url: str | None = None
    #: Execute orders on receipt; off, a person confirms each (``BASTION_ORDERS_AUTO_EXECUTE=0``).
    orders_auto_execute: bool = True
    #: How often the order clock (escalations, overdue, recovery) runs (seconds).
    orders_tick_seconds: float = 5.0
    #: How long removed content is kept, sealed, for review and complaints (days; TCO Art. 6: six months).
    orders_preservation_days: int = 183
    #: Art. 14(5): where imminent threats to life go when no Member State's authority can be identified (Europol).
    orders_europol_url: str | None = None
    #: This contact point's own URL, as authorities and the hub know it: orders addressed elsewhere are refused,
    #: so a signed order captured on its way to another provider cannot be replayed here.
    orders_contact_point_url: str | None = None
    #: The hub (``bastion hub serve``): its own database and its Ed25519 signing key. The key is never logged.
    hub_database_url: str = "sqlite:///./bastion-hub.db"
    hub_signing_key: str = field(default="", repr=False)
    #: Child-safety reports: how long reported material and data are kept, sealed (days; ``reporting/``).
    reports_preservation_days: int = 90
    #: Who reports: NCMEC's ``reporter`` and the EU Centre's provider identification.
    reports_reporter_email: str = "child-safety@example.invalid"
    #: How often new confirmed material is drafted and expired material purged (seconds).
    reports_tick_seconds: float = 30.0
    #: Transparency: how often the roll-up worker counts new events (seconds; ``transparency/rollups.py``).
    transparency_rollup_seconds: float = 5.0
    #: Minors: how often the grooming watch reads new deny and contact events (seconds; ``minors/interactions.py``).
    minors_grooming_seconds: float = 1.0
    #: The smallest count a researcher or regulator is shown (DSA Art. 40 access): smaller cells are suppressed.
    transparency_min_cell: int = 10
    #: The TOML file with what the DSA report needs and events cannot give (provider, service, monthly active
    #: recipients, moderators by language, the free-text parts): see docs/transparency.md.
    transparency_report_path: Path | None = None
    #: NCMEC CyberTipline: Basic-auth credentials (never logged), and the test environment unless production is
    #: switched on explicitly (``BASTION_NCMEC_PRODUCTION=1``); ``ncmec_url`` overrides both (a local fake, say).
    ncmec_username: str = field(default="", repr=False)
    ncmec_password: str = field(default="", repr=False)
    ncmec_production: bool = False
    ncmec_url: str = ""
    #: NCMEC's schema (``GET /ispws/xsd``), checked before each send; nothing is sent without it.
    ncmec_xsd: Path | None = None
    #: The EU Centre's report intake, and this provider's token there (never logged); no EU report when unset.
    eu_centre_url: str | None = None
    eu_centre_token: str = field(default="", repr=False)
    #: The Centre (``bastion centre serve``): its own database, and where it forwards reports per Member State
    #: (``BASTION_CENTRE_FORWARD=DE=https://...,FR=https://...,EUROPOL=https://...``), HMAC-signed.
    centre_database_url: str = "sqlite:///./bastion-centre.db"
    centre_forward: str = ""
    centre_forward_secret: bytes = field(default=b"", repr=False)
    #: HMA's API (``hma/``): the hosts its ``?url=`` forms may fetch from (``BASTION_HMA_FETCH_HOSTS=media.example,
    #: cdn.example``); none, fetching is off. A listed host that resolves to an internal address is refused anyway.
    hma_fetch_hosts: tuple[str, ...] = ()
    #: Make every bank created through HMA's API restricted (``BASTION_HMA_RESTRICTED_BANKS=1``): for a deployment
    #: whose HMA clients bank child sexual abuse material. Creating one then needs a child-safety role.
    hma_restricted_banks: bool = False
    #: The DSA Transparency Database (``https://transparency.dsa.ec.europa.eu``, or its sandbox) and this platform's
    #: API token there (never logged): statements of reasons are submitted only when both are set
    #: (``transparency/submission.py``); ``bastion transparency backfill`` queues those issued before.
    transparency_db_url: str | None = None
    transparency_db_token: str = field(default="", repr=False)
    #: How often the submitter looks for statements to send when the last batch was not full (seconds).
    transparency_interval_seconds: float = 1.0
    #: Deliverers per process (``BASTION_TRANSPARENCY_SUBMITTERS``): one writes while another waits for an answer.
    transparency_submitters: int = 2

    @property
    def submits_statements(self) -> bool:
        return bool(self.transparency_db_url and self.transparency_db_token)

    def audit_mac_key(self) -> bytes:
        """The audit checkpoint key: ``audit_key``, else the key file (created on first use, refused if shared)."""
        try:
            return decode_key(self.audit_key) if self.audit_key else load_or_create_key(self.audit_key_file)
        except SealError as exc:  # which key, so the one-line error says what to fix
            raise SealError(f"audit key: {exc}") from None

    def media_sealer(self) -> Sealer:
        try:
            return Sealer(decode_key(self.media_key) if self.media_key else load_or_create_key(self.media_key_file))
        except SealError as exc:
            raise SealError(f"media key: {exc}") from None

    @classmethod
    def from_env(cls) -> Settings:
        spool = os.environ.get("BASTION_SPOOL_DIR")
        snapshot = os.environ.get("BASTION_INDEX_SNAPSHOT_DIR")
        return cls(
            database_url=os.environ.get("BASTION_DATABASE_URL") or DEFAULT_DATABASE_URL,
            max_upload_bytes=_int("BASTION_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            index_refresh_seconds=_int("BASTION_INDEX_REFRESH_MS", 250) / 1000,
            match_rate_per_minute=_int("BASTION_MATCH_RATE_PER_MINUTE", cls.match_rate_per_minute),
            session_ttl_seconds=_int("BASTION_SESSION_TTL_SECONDS", cls.session_ttl_seconds),
            spool_dir=Path(spool) if spool else None,
            index_snapshot_dir=Path(snapshot) if snapshot else None,
            max_image_pixels=_positive("BASTION_MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_video_seconds=_positive("BASTION_MAX_VIDEO_SECONDS", cls.max_video_seconds),
            max_video_frames=_positive("BASTION_MAX_VIDEO_FRAMES", cls.max_video_frames),
            max_video_pixels=_positive("BASTION_MAX_VIDEO_PIXELS", cls.max_video_pixels),
            image_decodes=_positive("BASTION_IMAGE_DECODES", cls.image_decodes),
            video_decodes=_positive("BASTION_VIDEO_DECODES", cls.video_decodes),
            secure_cookies=os.environ.get("BASTION_SECURE_COOKIES", "") in ("1", "true", "yes"),
            login_account_attempts=_int("BASTION_LOGIN_ACCOUNT_ATTEMPTS", cls.login_account_attempts),
            login_address_attempts=_int("BASTION_LOGIN_ADDRESS_ATTEMPTS", cls.login_address_attempts),
            login_lockout_max_seconds=_int("BASTION_LOGIN_LOCKOUT_MAX_SECONDS", cls.login_lockout_max_seconds),
            login_max_concurrent=_int("BASTION_LOGIN_MAX_CONCURRENT", cls.login_max_concurrent),
            audit_key=os.environ.get("BASTION_AUDIT_KEY", ""),
            audit_key_file=Path(os.environ.get("BASTION_AUDIT_KEY_FILE") or cls.audit_key_file),
            policy_path=Path(policy) if (policy := os.environ.get("BASTION_POLICY")) else None,
            minors_rules_path=Path(rules) if (rules := os.environ.get("BASTION_MINORS_RULES")) else None,
            platform_webhook_url=os.environ.get("BASTION_PLATFORM_WEBHOOK_URL") or None,
            webhook_secret=os.environ.get("BASTION_WEBHOOK_SECRET", "").encode(),
            classifiers_path=Path(path) if (path := os.environ.get("BASTION_CLASSIFIERS")) else None,
            classifier_token=os.environ.get("BASTION_CLASSIFIER_TOKEN", ""),
            extensions=names_from(os.environ.get(EXTENSIONS_SETTING)),
            media_key=os.environ.get("BASTION_MEDIA_KEY", ""),
            media_key_file=Path(os.environ.get("BASTION_MEDIA_KEY_FILE") or cls.media_key_file),
            published_preview_days=_int("BASTION_PUBLISHED_PREVIEW_DAYS", cls.published_preview_days),
            orders_signing_key=os.environ.get("BASTION_ORDERS_SIGNING_KEY", ""),
            orders_provider=os.environ.get("BASTION_ORDERS_PROVIDER") or cls.orders_provider,
            orders_member_state=os.environ.get("BASTION_ORDERS_MEMBER_STATE") or cls.orders_member_state,
            orders_contact_email=os.environ.get("BASTION_ORDERS_CONTACT_EMAIL") or cls.orders_contact_email,
            orders_escalation_minutes=_minutes("BASTION_ORDERS_ESCALATION_MINUTES", cls.orders_escalation_minutes),
            orders_escalation_url=os.environ.get("BASTION_ORDERS_ESCALATION_URL") or None,
            orders_auto_execute=os.environ.get("BASTION_ORDERS_AUTO_EXECUTE", "1") not in ("0", "false", "no"),
            orders_preservation_days=_int("BASTION_ORDERS_PRESERVATION_DAYS", cls.orders_preservation_days),
            orders_europol_url=os.environ.get("BASTION_ORDERS_EUROPOL_URL") or None,
            orders_contact_point_url=os.environ.get("BASTION_ORDERS_CONTACT_POINT_URL") or None,
            hub_database_url=os.environ.get("BASTION_HUB_DATABASE_URL") or cls.hub_database_url,
            hub_signing_key=os.environ.get("BASTION_HUB_SIGNING_KEY", ""),
            reports_preservation_days=_int("BASTION_REPORTS_PRESERVATION_DAYS", cls.reports_preservation_days),
            reports_reporter_email=os.environ.get("BASTION_REPORTS_EMAIL") or cls.reports_reporter_email,
            reports_tick_seconds=_seconds("BASTION_REPORTS_TICK_SECONDS", cls.reports_tick_seconds),
            transparency_rollup_seconds=_seconds("BASTION_TRANSPARENCY_ROLLUP_SECONDS",
                                                 cls.transparency_rollup_seconds),
            minors_grooming_seconds=_seconds("BASTION_MINORS_GROOMING_SECONDS", cls.minors_grooming_seconds),
            transparency_min_cell=_int("BASTION_TRANSPARENCY_MIN_CELL", cls.transparency_min_cell),
            transparency_report_path=(Path(report) if (report := os.environ.get("BASTION_TRANSPARENCY_REPORT"))
                                      else None),
            ncmec_username=os.environ.get("BASTION_NCMEC_USERNAME", ""),
            ncmec_password=os.environ.get("BASTION_NCMEC_PASSWORD", ""),
            ncmec_production=os.environ.get("BASTION_NCMEC_PRODUCTION", "") in ("1", "true", "yes"),
            ncmec_url=os.environ.get("BASTION_NCMEC_URL", ""),
            ncmec_xsd=Path(xsd) if (xsd := os.environ.get("BASTION_NCMEC_XSD")) else None,
            eu_centre_url=os.environ.get("BASTION_EU_CENTRE_URL") or None,
            eu_centre_token=os.environ.get("BASTION_EU_CENTRE_TOKEN", ""),
            centre_database_url=os.environ.get("BASTION_CENTRE_DATABASE_URL") or cls.centre_database_url,
            centre_forward=os.environ.get("BASTION_CENTRE_FORWARD", ""),
            centre_forward_secret=os.environ.get("BASTION_CENTRE_FORWARD_SECRET", "").encode(),
            hma_fetch_hosts=tuple(h.strip() for h in os.environ.get("BASTION_HMA_FETCH_HOSTS", "").split(",")
                                  if h.strip()),
            hma_restricted_banks=os.environ.get("BASTION_HMA_RESTRICTED_BANKS", "") in ("1", "true", "yes"),
            transparency_db_url=os.environ.get("BASTION_TRANSPARENCY_DB_URL") or None,
            transparency_db_token=os.environ.get("BASTION_TRANSPARENCY_DB_TOKEN", ""),
            transparency_interval_seconds=_seconds("BASTION_TRANSPARENCY_INTERVAL_SECONDS",
                                                   cls.transparency_interval_seconds),
            transparency_submitters=_positive("BASTION_TRANSPARENCY_SUBMITTERS", cls.transparency_submitters),
        )
