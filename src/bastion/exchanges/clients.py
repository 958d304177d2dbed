"""Each exchange's client, from python-threatexchange (pytx): its API classes fetch and page, Bastion turns their
records into ``RecordUpdate``s and their checkpoints into JSON.

pytx is the ``exchanges`` extra: imported here only, lazily, so Bastion runs without it and an exchange says so
(``ExchangeUnavailable``) instead of failing at import. The clients are pytx's own; only their base URL is set (a
setting, ``base_url``) so a deployment can use a test environment and the tests a fake on loopback.

What pytx lacks and Bastion adds: ThreatExchange's reactions as feedback (pytx leaves ``report_opinion`` out),
contributing a new hash to ThreatExchange with the HTTP status kept (pytx's ``upload_threat_descriptor`` answers
a 5xx and a 4xx alike, as a body), NCMEC's image MD5 (pytx maps only video MD5), and errors that never carry the
credentials (pytx's ``requests`` errors name the URL, which carries ThreatExchange's token).

Don't: log or raise anything that holds the credentials or a URL with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from bastion.exchanges.interfaces import (
    Batch,
    Contribution,
    ExchangeKind,
    ExchangeUnavailable,
    FeedbackTarget,
    FetchFailed,
    InvalidExchange,
    Opinion,
    RecordUpdate,
    Signal,
)

#: pytx's signal type names and Bastion's (a video's MD5 is the file's MD5).
PYTX_NAMES = {"pdq": "pdq", "video_md5": "md5"}
#: NCMEC's fingerprint names and Bastion's (pytx maps only a video's MD5; an image's is just as useful).
NCMEC_NAMES = {"pdq": "pdq", "md5": "md5"}
MAX_RECORD_KEY = 300
INSTALL_HINT = "exchanges need python-threatexchange: pip install 'bastion[exchanges]'"


def available() -> bool:
    try:
        import threatexchange  # noqa: F401
    except ImportError:
        return False
    return True


def require_pytx() -> None:
    if not available():
        raise ExchangeUnavailable(INSTALL_HINT)


def record_key(raw: str) -> str:
    """The record id as stored: the exchange's own when it fits, else a digest of it (still unique)."""
    return raw if len(raw) <= MAX_RECORD_KEY else "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Config:
    """What a client needs of an exchange's row, detached from the session."""

    name: str
    kind: ExchangeKind
    settings: Mapping[str, Any]
    signal_types: Sequence[str]
    categories: Sequence[str]
    entry_category: str


class ExchangeClient(Protocol):
    """One exchange's client: pages of record updates from a checkpoint, and feedback on one record."""

    opinions: frozenset[Opinion]

    def batches(self, checkpoint: dict[str, Any] | None) -> Iterator[Batch]: ...

    def send_feedback(self, target: FeedbackTarget) -> None: ...

    def contribute(self, contribution: Contribution) -> str:
        """Share a new hash; returns the exchange's id of what it accepted. Kinds not in ``CONTRIBUTES`` refuse."""
        ...


def _no_contributions(kind: str) -> FetchFailed:
    return FetchFailed(f"{kind} takes no contributed hashes")


def http_failure(kind: str, exc: Exception) -> FetchFailed:
    """An error from the client, said without its URL (ThreatExchange's carries the access token)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return FetchFailed(f"{kind} answered HTTP {status}", int(status))
    return FetchFailed(f"{kind} could not be reached or answered nonsense ({type(exc).__name__})")


def _wanted(config: Config, tags: set[str]) -> tuple[bool, str]:
    """Whether a record's tags (ThreatExchange's tags, NCMEC's classification) pass the categories filter, and the
    category its entries get: the exchange's own setting, else the first tag that passed."""
    chosen = sorted(tags & set(config.categories)) if config.categories else sorted(tags)
    if config.categories and not chosen:
        return False, ""
    return True, (config.entry_category or (chosen[0] if chosen else ""))[:64]


# --- ThreatExchange ------------------------------------------------------------------------------------------------


class ThreatExchangeClient:
    """Meta's ThreatExchange: ``/<privacy group>/threat_updates`` tailed by update time (pytx's API class)."""

    opinions = frozenset(Opinion)
    PAGE_SIZE = 100
    #: The reaction each opinion posts on the record's descriptors.
    REACTIONS: ClassVar[dict[Opinion, str]] = {Opinion.SEEN: "SAW_THIS_TOO", Opinion.TRUE_POSITIVE: "HELPFUL",
                 Opinion.FALSE_POSITIVE: "NOT_HELPFUL"}

    def __init__(self, config: Config, credentials: str) -> None:
        require_pytx()
        from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI, is_valid_app_token
        from threatexchange.exchanges.impl.fb_threatexchange_api import (
            FBThreatExchangeCollabConfig,
            FBThreatExchangeSignalExchangeAPI,
        )
        from threatexchange.signal_type.md5 import VideoMD5Signal
        from threatexchange.signal_type.pdq.signal import PdqSignal

        if not is_valid_app_token(credentials.strip()):
            raise InvalidExchange("the ThreatExchange credentials are not an app access token (APPID|SECRET)")
        self.config = config
        self.client = ThreatExchangeAPI(credentials.strip(),
                                        endpoint_override=config.settings.get("base_url") or None)
        self.collab = FBThreatExchangeCollabConfig(name=config.name,
                                                   privacy_group=int(config.settings["privacy_group"]))
        self.api = FBThreatExchangeSignalExchangeAPI(self.client, self.collab)
        self.signal_types = [st for st in (PdqSignal, VideoMD5Signal)
                             if PYTX_NAMES[st.get_name()] in config.signal_types]

    def batches(self, checkpoint: dict[str, Any] | None) -> Iterator[Batch]:
        """pytx's ``fetch_iter``, less its one flaw: a group with nothing new answers an empty page, which pytx
        asserts never happens (and then fails on ``max`` of nothing). Its client, records and checkpoint as they are.
        """
        from threatexchange.exchanges.clients.fb_threatexchange.threat_updates import ThreatUpdateJSON
        from threatexchange.exchanges.impl.fb_threatexchange_api import (
            FBThreatExchangeCheckpoint,
            FBThreatExchangeIndicatorRecord,
        )

        start_time = int(checkpoint["update_time"]) if checkpoint else None
        cursor = self.client.get_threat_updates(
            self.collab.privacy_group, start_time=start_time, page_size=self.PAGE_SIZE,
            fields=FBThreatExchangeIndicatorRecord.te_threat_updates_fields(), decode_fn=ThreatUpdateJSON)
        highest = start_time or 0
        for page in cursor:
            if not page:
                continue
            highest = max(highest, *(update.time for update in page))
            records = [self._record((u.threat_type, u.indicator),
                                    FBThreatExchangeIndicatorRecord.from_threatexchange_json(self.client.app_id, u))
                       for u in page]
            yield Batch(records, dataclasses.asdict(FBThreatExchangeCheckpoint(highest)))

    def _record(self, key: tuple[str, str], value: Any) -> RecordUpdate:
        from threatexchange.exchanges.fetch_state import SignalOpinionCategory

        rkey = record_key(f"{key[0]}:{key[1]}")
        if value is None:
            return RecordUpdate(rkey)
        detail = ",".join(sorted({str(o.descriptor_id) for o in value.opinions
                                  if o.descriptor_id is not None and o.descriptor_id > 0 and not o.is_mine}))
        if not any(o.category == SignalOpinionCategory.POSITIVE_CLASS for o in value.opinions):
            return RecordUpdate(rkey, (), detail)  # only non-malicious or investigation seeds: not banked
        ok, category = _wanted(self.config, {tag for o in value.opinions for tag in o.tags})
        if not ok:
            return RecordUpdate(rkey, (), detail)
        converted = self.api.naive_convert_to_signal_type(self.signal_types, self.collab, {key: value})
        signals = tuple(Signal(PYTX_NAMES[st.get_name()], hash_value, category)
                        for st, by_value in converted.items() for hash_value in by_value)
        return RecordUpdate(rkey, signals, detail)

    def send_feedback(self, target: FeedbackTarget) -> None:
        descriptors = [d for d in target.detail.split(",") if d]
        if not descriptors:
            raise FetchFailed("the record names no descriptor of another member to react to")
        for descriptor in descriptors:
            try:
                answer = self.client.react_to_threat_descriptor(  # type: ignore[no-untyped-call]
                    descriptor, self.REACTIONS[target.opinion])
            except Exception as exc:  # requests' errors name the URL, which holds the token
                raise http_failure("ThreatExchange", exc) from None
            body = answer[2] if isinstance(answer, list) and len(answer) == 3 else None
            if not isinstance(body, dict) or "error" in body or not body.get("success", False):
                raise FetchFailed("ThreatExchange refused the reaction")

    #: ThreatExchange's indicator type of each signal type Bastion shares (its names).
    UPLOAD_TYPES: ClassVar[dict[str, str]] = {"pdq": "HASH_PDQ", "md5": "HASH_MD5"}

    def contribute(self, contribution: Contribution) -> str:
        """A new threat descriptor in the privacy group: the hash, ``MALICIOUS``, the tags, shared with the group
        only. pytx builds the parameters and checks them; the POST is Bastion's, to keep the HTTP status (a 5xx is
        retried, a 4xx is a refusal) and to say no URL (it carries the token)."""
        kind = self.UPLOAD_TYPES.get(contribution.signal_type)
        if kind is None:
            raise FetchFailed(f"ThreatExchange takes no {contribution.signal_type} hashes", 422)
        params = {"indicator": contribution.value, "type": kind, "description": contribution.description[:1000],
                  "share_level": "AMBER", "status": "MALICIOUS", "privacy_type": "HAS_PRIVACY_GROUP",
                  "privacy_members": str(self.collab.privacy_group), "tags": ",".join(contribution.tags)}
        refused = self.client._validate_post_params_for_submit(params)  # type: ignore[no-untyped-call]
        if refused is not None:
            raise FetchFailed(f"ThreatExchange descriptor incomplete: {refused}", 422)
        url = f"{self.client._base_url}/threat_descriptors"
        try:
            with self.client._get_session() as session:  # type: ignore[no-untyped-call]
                response = session.post(url, params={"access_token": self.client.api_token}, data=params)
        except Exception as exc:
            raise http_failure("ThreatExchange", exc) from None
        if response.status_code >= 400:
            raise FetchFailed(f"ThreatExchange answered HTTP {response.status_code}", response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("id") or body.get("success") is False:
            raise FetchFailed("ThreatExchange answered no descriptor id")
        return str(body["id"])[:200]


# --- NCMEC hash sharing --------------------------------------------------------------------------------------------


class NcmecClient:
    """NCMEC's hash sharing API (``/v2/entries`` by time range, paged): pytx's API class with its flow control,
    pointed at the environment's URL or ``base_url``."""

    opinions = frozenset({Opinion.TRUE_POSITIVE, Opinion.FALSE_POSITIVE})

    def __init__(self, config: Config, credentials: str) -> None:
        require_pytx()
        from threatexchange.exchanges.clients.ncmec import hash_api
        from threatexchange.exchanges.impl.ncmec_api import NCMECCollabConfig, NCMECSignalExchangeAPI

        user, _, password = credentials.strip().partition(":")
        if not user or not password:
            raise InvalidExchange("the NCMEC credentials are USER:PASSWORD")
        try:
            environment = hash_api.NCMECEnvironment[str(config.settings.get("environment", "NGO"))]
        except KeyError:
            raise InvalidExchange("unknown NCMEC environment") from None
        base_url = str(config.settings.get("base_url") or environment.value)

        class _HashApi(hash_api.NCMECHashAPI):
            def __init__(self, username: str, secret: str, env: hash_api.NCMECEnvironment) -> None:
                super().__init__(username, secret, env)
                self._base_url = base_url

        class _Api(NCMECSignalExchangeAPI):
            def get_client(self, environment: hash_api.NCMECEnvironment) -> hash_api.NCMECHashAPI:
                return _HashApi(user, password, environment)

        self.config = config
        self.collab = NCMECCollabConfig(name=config.name, environment=environment,
                                        only_esp_ids={int(i) for i in config.settings.get("only_esp_ids", [])})
        self.api = _Api(self.collab, user, password)
        self._client: Callable[[], hash_api.NCMECHashAPI] = lambda: _HashApi(user, password, environment)

    def batches(self, checkpoint: dict[str, Any] | None) -> Iterator[Batch]:
        from threatexchange.exchanges.impl.ncmec_api import NCMECCheckpoint, _NCMECPagingInfo

        start = None
        if checkpoint:
            paging = checkpoint.get("paging_info")
            start = NCMECCheckpoint(int(checkpoint["get_entries_max_ts"]),
                                    _NCMECPagingInfo(**paging) if paging else None)
        for delta in self.api.fetch_iter([], start):
            records = [self._record(key, value) for key, value in delta.updates.items()]
            yield Batch(records, dataclasses.asdict(delta.checkpoint))

    def _record(self, key: str, entry: Any) -> RecordUpdate:
        rkey = record_key(key)
        detail = f"{entry.member_id}:{entry.id}"
        if entry.deleted:
            return RecordUpdate(rkey, (), detail)
        if self.collab.only_esp_ids and entry.member_id not in self.collab.only_esp_ids:
            return RecordUpdate(rkey, (), detail)
        ok, category = _wanted(self.config, {entry.classification} if entry.classification else set())
        if not ok:
            return RecordUpdate(rkey, (), detail)
        # NCMEC's hashes are child sexual abuse material: the category says so whatever the setting.
        category = category if category.lower().startswith("csam") else f"csam-{category}" if category else "csam"
        signals = tuple(Signal(NCMEC_NAMES[name.lower()], value.strip().lower(), category[:64])
                        for name, value in entry.fingerprints.items()
                        if name.lower() in NCMEC_NAMES and NCMEC_NAMES[name.lower()] in self.config.signal_types)
        return RecordUpdate(rkey, signals, detail)

    def contribute(self, contribution: Contribution) -> str:
        raise _no_contributions("NCMEC")

    def send_feedback(self, target: FeedbackTarget) -> None:
        from threatexchange.exchanges.clients.ncmec import hash_api

        esp, _, entry_id = target.detail.partition(":")
        fingerprint = {"pdq": hash_api.FingerprintType.pdq, "md5": hash_api.FingerprintType.md5}[target.signal_type]
        vote = (hash_api.FeedbackType.upvote if target.opinion == Opinion.TRUE_POSITIVE
                else hash_api.FeedbackType.downvote)
        try:
            self._client().submit_feedback(int(esp), entry_id, fingerprint, vote)
        except Exception as exc:
            raise http_failure("NCMEC", exc) from None


# --- StopNCII -------------------------------------------------------------------------------------------------------


class StopNciiClient:
    """StopNCII.org's ``FetchHashes`` (JSON pages by ``nextPageToken`` from a timestamp): pytx's client, with the
    deletion pytx misses (it compares a hash's value, not its status, with ``Withdrawn``/``Deleted``, so a withdrawn
    hash is never deleted). Credentials: ``FETCH_FUNCTION_KEY,SUBSCRIPTION_KEY[,FEEDBACK_FUNCTION_KEY]``."""

    opinions = frozenset(Opinion)
    NAMES: ClassVar[dict[str, str]] = {"ImagePDQ": "pdq", "VideoMD5": "md5"}

    def __init__(self, config: Config, credentials: str) -> None:
        require_pytx()
        from threatexchange.exchanges.clients.stopncii import api

        parts = [p.strip() for p in credentials.strip().split(",")]
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidExchange("the StopNCII credentials are FETCH_FUNCTION_KEY,SUBSCRIPTION_KEY"
                                  "[,FEEDBACK_FUNCTION_KEY]")
        extra = {api.StopNCIIEndpoint.SubmitFeedback: parts[2]} if len(parts) == 3 else {}
        self.config = config
        self.client = api.StopNCIIAPI(parts[1], parts[0], additional_function_keys=extra,
                                      base_url_override=config.settings.get("base_url") or None)

    def batches(self, checkpoint: dict[str, Any] | None) -> Iterator[Batch]:
        from threatexchange.exchanges.impl.stop_ncii_api import StopNCIICheckpoint

        start = int(checkpoint["update_time"]) if checkpoint else self.client.DEFAULT_START_TIME
        for response in self.client.fetch_hashes_iter(start_timestamp=start):
            records = [self._record(r) for r in response.hashRecords]
            yield Batch(records, dataclasses.asdict(StopNCIICheckpoint.from_stopncii_fetch(response)))

    def _record(self, record: Any) -> RecordUpdate:
        from threatexchange.exchanges.clients.stopncii import api

        kind = record.signalType.value
        rkey = record_key(f"{kind}:{record.hashValue}")
        name = self.NAMES.get(kind)
        gone = record.hashStatus in (api.StopNCIICaseStatus.Withdrawn, api.StopNCIICaseStatus.Deleted)
        if name is None or gone or name not in self.config.signal_types:
            return RecordUpdate(rkey, (), kind)
        ok, category = _wanted(self.config, {tag for f in record.CSPFeedbacks for tag in f.tags})
        if not ok:
            return RecordUpdate(rkey, (), kind)
        return RecordUpdate(rkey, (Signal(name, record.hashValue.strip().lower(), category or "ncii"),), kind)

    def contribute(self, contribution: Contribution) -> str:
        raise _no_contributions("StopNCII")

    def send_feedback(self, target: FeedbackTarget) -> None:
        from threatexchange.exchanges.clients.stopncii import api

        value = {Opinion.SEEN: api.StopNCIICSPFeedbackValue.PendingReview,
                 Opinion.TRUE_POSITIVE: api.StopNCIICSPFeedbackValue.Blocked,
                 Opinion.FALSE_POSITIVE: api.StopNCIICSPFeedbackValue.NotBlocked}[target.opinion]
        try:
            self.client.submit_feedback(api.StopNCIISignalType(target.detail), target.record.partition(":")[2],
                                        value)
        except ValueError:
            raise FetchFailed("StopNCII feedback needs FEEDBACK_FUNCTION_KEY in the credentials") from None
        except Exception as exc:
            raise http_failure("StopNCII", exc) from None


# --- Tech Against Terrorism -------------------------------------------------------------------------------------


class TatClient:
    """Tech Against Terrorism's hash list (TCAP: a token from ``token-auth/tcap/``, then
    ``api/hash-list/v2/all`` pages after a ``"<time>,<id>"`` checkpoint): pytx's client at the configured URL. Takes
    MD5s of any file type (pytx only videos'; Bastion's ``md5`` is the file's). No feedback API."""

    opinions: frozenset[Opinion] = frozenset()
    NAMES: ClassVar[dict[str, str]] = {"PDQ": "pdq", "MD5": "md5"}

    def __init__(self, config: Config, credentials: str) -> None:
        require_pytx()
        from threatexchange.exchanges.clients.techagainstterrorism import api

        user, _, password = credentials.strip().partition(":")
        if not user or not password:
            raise InvalidExchange("the Tech Against Terrorism credentials are USER:PASSWORD")
        self.config = config
        self.client = api.TATHashListAPI(user, password)
        base_url = str(config.settings.get("base_url") or "")
        if base_url:
            self.client.BASE_URL = base_url.rstrip("/") + "/"  # type: ignore[misc]  # the instance's, not the class's

    def batches(self, checkpoint: dict[str, Any] | None) -> Iterator[Batch]:
        after = str(checkpoint["checkpoint"]) if checkpoint else ""
        for response in self.client.fetch_hashes_iter(after):
            after = response.checkpoint or after
            yield Batch([self._record(r) for r in response.results], {"checkpoint": after})

    def _record(self, record: Any) -> RecordUpdate:
        rkey = record_key(f"{record.id}")
        name = self.NAMES.get(record.algorithm)
        if record.deleted or name is None or name not in self.config.signal_types:
            return RecordUpdate(rkey)
        ideology = getattr(record.ideology, "value", str(record.ideology))
        ok, _ = _wanted(self.config, {ideology})
        if not ok:
            return RecordUpdate(rkey)
        category = self.config.entry_category or "terrorist_content"
        return RecordUpdate(rkey, (Signal(name, record.hash_digest.strip().lower(), category),))

    def send_feedback(self, target: FeedbackTarget) -> None:
        raise FetchFailed("Tech Against Terrorism takes no feedback")

    def contribute(self, contribution: Contribution) -> str:
        raise _no_contributions("Tech Against Terrorism")


FACTORIES: dict[ExchangeKind, Callable[[Config, str], ExchangeClient]] = {
    ExchangeKind.THREATEXCHANGE: ThreatExchangeClient,
    ExchangeKind.NCMEC: NcmecClient,
    ExchangeKind.STOP_NCII: StopNciiClient,
    ExchangeKind.TAT: TatClient,
}
#: The opinions each kind can send back, known without pytx (for refusing a request before queueing it).
OPINIONS: dict[ExchangeKind, frozenset[Opinion]] = {
    ExchangeKind.THREATEXCHANGE: ThreatExchangeClient.opinions,
    ExchangeKind.NCMEC: NcmecClient.opinions,
    ExchangeKind.STOP_NCII: StopNciiClient.opinions,
    ExchangeKind.TAT: TatClient.opinions,
}
#: The kinds Bastion can share new hashes with, and the signal types each takes (Bastion's names). ThreatExchange
#: only: NCMEC's and StopNCII's hashes are child-safety and intimate-image matters a crisis never shares, and neither
#: pytx nor Tech Against Terrorism's documented API has an upload to its hash list.
CONTRIBUTES: dict[ExchangeKind, tuple[str, ...]] = {ExchangeKind.THREATEXCHANGE: ("pdq", "md5")}
#: The signal types each kind can bring (Bastion's names).
SIGNAL_TYPES: dict[ExchangeKind, tuple[str, ...]] = {
    ExchangeKind.THREATEXCHANGE: ("pdq", "md5"),
    ExchangeKind.NCMEC: ("pdq", "md5"),
    ExchangeKind.STOP_NCII: ("pdq", "md5"),
    ExchangeKind.TAT: ("pdq", "md5"),
}
#: Each kind's required settings, and the environment variable its credentials are read from by default.
REQUIRED_SETTINGS: dict[ExchangeKind, tuple[str, ...]] = {
    ExchangeKind.THREATEXCHANGE: ("privacy_group",),
    ExchangeKind.NCMEC: (),
    ExchangeKind.STOP_NCII: (),
    ExchangeKind.TAT: (),
}
DEFAULT_CREDENTIALS_ENV: dict[ExchangeKind, str] = {
    ExchangeKind.THREATEXCHANGE: "TX_ACCESS_TOKEN",
    ExchangeKind.NCMEC: "TX_NCMEC_CREDENTIALS",
    ExchangeKind.STOP_NCII: "TX_STOPNCII_KEYS",
    ExchangeKind.TAT: "TX_TAT_CREDENTIALS",
}


def client_for(config: Config, credentials: str) -> ExchangeClient:
    require_pytx()
    return FACTORIES[config.kind](config, credentials)
