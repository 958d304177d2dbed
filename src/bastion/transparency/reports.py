"""The legal reports, filled from the metrics: the DSA transparency report (the eleven CSV templates of Implementing
Regulation (EU) 2024/2835, Annex I) and the TCO Art. 7 (provider) and Art. 8 (authorities) figures.

The DSA templates ship with the package (``templates/``, the Commission's CSVs as published) and are filled in place:
same columns in the same order, the same rows. A row whose scope is a placeholder (``AT, […], SE``, ``[...]``) is
replaced by one row per Member State or language the period has figures for (others than the rows the template names
explicitly). Every number comes from ``metrics.figures`` over the period's cells, so it reconciles with
``/v1/transparency/metrics`` by construction; what events cannot give (provider name, monthly active recipients,
moderators, the free text of Part 11) comes from the report file (``ReportConfig``).

Medians are in hours (two decimals), as the Commission's guidance asks for time to action.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.core.errors import DomainError
from bastion.hub.events import HubEventKind, Issued
from bastion.hub.models import Authority, HubEvent, HubOrder
from bastion.moderation import queries
from bastion.transparency.metrics import (
    Cell,
    Cells,
    CellsFor,
    Durations,
    Figures,
    Metric,
    Tally,
    figures,
    histogram,
    project,
)

TEMPLATES = Path(__file__).with_name("templates")
PREFIX = "4_EN_Annex_I__Templates_for_Transparency_Reports_CSV_Part_"
#: The eleven parts, in order: the file names of the templates (and of the report's files).
PARTS = ("1_summary", "2_categories_names", "3_member_states_orders", "4_notices", "5_own_initiative_illegal",
         "6_own_initiative_TC", "7_appeals_and_recidivism", "8_automated_means", "9_human_resources", "10_AMAR",
         "11_qualitative")
ORDER_METRICS = (Metric.ORDER_RECEIVED.value, Metric.ORDER_EXECUTED.value, Metric.ORDER_UNABLE.value)
NOTICE_METRICS = frozenset({Metric.NOTICE, Metric.NOTICE_ACTIONED, histogram(Metric.NOTICE_ACTIONED)})
PLACEHOLDERS = frozenset({"[...]", "[…]", "AT, […], SE", "AT, [...], SE"})


class ReportConfigError(DomainError):
    status = 422
    title = "Invalid transparency report file"


class ReportConfig(BaseModel):
    """What the DSA report needs that no event records (``Settings.transparency_report_path``, TOML)."""

    provider: str = ""
    service: str = ""
    previous_report: str = ""
    published: str = ""
    #: Average monthly active recipients (Part 10): ``TOTAL`` and per Member State (``AT``...).
    amar: dict[str, int] = Field(default_factory=dict)
    internal_moderators: int | None = None
    external_moderators: int | None = None
    #: Moderators with sufficient linguistic expertise, per language (``bg``...; Part 9).
    moderator_languages: dict[str, int] = Field(default_factory=dict)
    #: Part 11's free text, in the template's order of indicators.
    qualitative: list[str] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> ReportConfig:
        if path is None:
            return cls()
        try:
            return cls.model_validate(tomllib.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ReportConfigError(f"{path}: {exc}") from None


def template(part: str) -> list[list[str]]:
    with (TEMPLATES / f"{PREFIX}{part}.csv").open(encoding="utf-8", newline="") as f:
        return [list(r) for r in csv.reader(f)]


# --- values -------------------------------------------------------------------------------------------------------


def _n(value: int | None) -> str:
    return "" if value is None else str(value)


def _hours(d: Durations) -> str:
    return "" if d.median_s is None else f"{d.median_s / 3600:.2f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@dataclass
class _Labels:
    """Which cells a template row's category label takes: TOTAL, a statement category, or a keyword under it."""

    grounds: dict[str, tuple[str, str, bool]] = field(default_factory=dict)

    def ground(self, category: str) -> tuple[str, str, bool]:
        if category not in self.grounds:
            self.grounds[category] = queries.dsa_ground(category)
        return self.grounds[category]

    def matches(self, category: str, statement: str, label: str) -> bool:
        if label == "TOTAL":
            return True
        if not category:
            return False
        cell_statement, keyword, _ = self.ground(category)
        return cell_statement == statement and label in (statement, keyword)


def _figures(cells: Cells, keep: Callable[[Cell], bool]) -> Figures:
    [f] = figures({c: t for c, t in cells.items() if keep(c)})
    return f


def dsa_report(cells_for: CellsFor, start: dt.date, end: dt.date, config: ReportConfig,
               today: dt.date | None = None) -> dict[str, list[list[str]]]:
    """The eleven parts, as rows (header first), keyed by file name. ``cells_for(keep)``: the period's cells with
    the dimension columns ``keep`` (``rollups.cells_for``, or ``from_cells`` over cells already counted); the report
    asks for three cuts (by category; category and Member State for orders; language for Part 8), each summed in the
    database."""
    period = f"{start.isoformat()}/{end.isoformat()}"
    labels = _Labels()
    out: dict[str, list[list[str]]] = {}
    cells = cells_for(("category",))
    under = _Under(cells, labels)

    def head(row: list[str]) -> list[str]:
        return [row[0], config.service, period, *row[3:]]

    # Part 1: who and when
    rows = template(PARTS[0])
    values = {"Name of the service provider": config.provider,
              "Date of the publication of the report": config.published or (today or dt.date.today()).isoformat(),
              "Date of the publication of the latest previous report": config.previous_report,
              "Starting date of reporting period": start.isoformat(),
              "Ending date of reporting period": end.isoformat()}
    out[PARTS[0]] = [rows[0]] + [[r[0], config.service, r[2], values.get(r[2], "")] for r in rows[1:]]
    out[PARTS[1]] = template(PARTS[1])

    # Part 3: orders from Member States (TCO removal orders), by category and issuing Member State
    rows = template(PARTS[2])
    orders = _Under(cells_for(("category", "country"), ORDER_METRICS), labels)
    states = sorted({c.country for c in orders.cells if c.country})

    def part3(statement: str, label: str, row: list[str]) -> list[list[str]]:
        scopes = states if row[5] in PLACEHOLDERS else [row[5]]
        filled = []
        for scope in scopes:
            f = _figures(orders(statement, label),
                         lambda c, scope=scope: scope == "TOTAL" or c.country == scope)  # type: ignore[misc]
            filled.append([*head(row)[:5], scope, _n(f.orders_received), _n(f.order_items), "0.00",
                           _hours(f.order_to_execution), "0", "", "", *row[13:]])
        return filled

    out[PARTS[2]] = _flatten(rows, 3, part3)

    # Part 4: notices, by category of the notice
    rows = template(PARTS[3])

    def part4(statement: str, label: str, row: list[str]) -> list[list[str]]:
        taken = under(statement, label)

        def f(trusted: bool) -> Figures:
            return _figures(taken, lambda c: c.metric in NOTICE_METRICS
                            and (not trusted or c.source == queries.Source.TRUSTED_FLAGGER))

        every, tf = f(False), f(True)

        def acted(trusted: bool, illegal: bool) -> str:
            return str(sum(t.count for c, t in taken.items() if c.metric == Metric.NOTICE_ACTIONED
                           and bool(c.category) and labels.ground(c.category)[2] == illegal
                           and (not trusted or c.source == queries.Source.TRUSTED_FLAGGER)))

        return [[*head(row)[:5], _n(every.notices), _n(tf.notices), _n(every.notices), _n(tf.notices),
                 _hours(every.notice_to_action), _hours(tf.notice_to_action), acted(False, True), acted(True, True),
                 acted(False, False), acted(True, False), *row[15:]]]

    out[PARTS[3]] = _flatten(rows, 3, part4)

    # Parts 5 and 6: own-initiative measures, illegal content and incompatible with the terms
    suspensions = _figures(cells, lambda c: True).suspensions
    for part, illegal in ((PARTS[4], True), (PARTS[5], False)):
        rows = template(part)

        def part56(statement: str, label: str, row: list[str], illegal: bool = illegal) -> list[list[str]]:
            def own(c: Cell) -> bool:
                return (c.metric == Metric.ACTION and c.proactive and bool(c.category)
                        and labels.ground(c.category)[2] == illegal)

            taken = under(statement, label)
            f = _figures(taken, own)
            acts = f.by_action
            demoted = (acts.get("demote") or 0) + (acts.get("not_recommended") or 0)
            auto = sum(t.count for c, t in taken.items() if own(c) and c.path == queries.Path.AUTOMATED)
            account = ["", ""] if label != "TOTAL" else [_n(suspensions.get("suspend_temporarily", 0)),
                                                         _n(suspensions.get("suspend_permanently", 0))]
            return [[*head(row)[:5], _n(f.actioned), str(auto), _n(acts.get("remove", 0)),
                     _n(acts.get("disable_in_territories", 0)), str(demoted), _n(acts.get("age_restrict", 0)), "0",
                     _n(acts.get("label", 0)), "0", "0", "0", "0", "0", "0", *account, *row[21:]]]

        out[part] = _flatten(rows, 3, part56)

    # Part 7: complaints and suspensions
    total = _figures(cells, lambda c: True)
    appeal_rows = {"Total number": _n(total.appeals_filed), "Decisions upheld": _n(total.appeals_upheld),
                   "Decisions partially reversed": _n(total.appeals_partly_reversed),
                   "Decisions reversed": _n(total.appeals_reversed),
                   "Median time": _hours(total.appeal_to_decision), "Decision omitted": "0"}
    rows = template(PARTS[6])
    filled = [rows[0]]
    for row in rows[1:]:
        indicator, scope = row[4], row[5]
        value = ""
        if indicator.startswith("Number of complaints submitted") or indicator.startswith(
                "Complaint regarding a decision to remove"):
            value = appeal_rows.get(scope, "")
        elif indicator.startswith("Complaint regarding"):
            value = "" if scope == "Median time" else "0"
        elif indicator.startswith("Number of restrictions newly imposed"):
            value = "0"
        elif "manifestly illegal content" in indicator:
            value = str(sum(v or 0 for v in total.suspensions.values()))
        elif indicator.startswith("Number of suspensions"):
            value = "0"
        filled.append([*head(row)[:6], value, row[7]])
    out[PARTS[6]] = filled

    # Part 8: automated means (accuracy, precision and recall estimated from reversals and misses:
    # docs/transparency.md)
    by_language = cells_for(("language",), (Metric.ACTION.value, Metric.REVERSAL.value, Metric.NOTICE.value,
                                            Metric.UPLOAD.value, Metric.AUTOMATED_MISSED.value))
    languages = sorted({c.language for c in by_language if c.metric == Metric.ACTION and c.language})
    rows = template(PARTS[7])
    part8 = _Part8(by_language)
    filled = [rows[0]]
    for row in rows[1:]:
        scopes = [s for s in languages if s not in ("bg", "sv")] if row[5] in PLACEHOLDERS else [row[5]]
        for scope in scopes:
            filled.append([*head(row)[:5], scope, part8.value(row[4], scope), part8.context(row[4], scope, row[7])])
    out[PARTS[7]] = filled

    # Part 9: moderators (from the report file)
    rows = template(PARTS[8])
    named = {"bg", "sv"}
    filled = [rows[0]]
    for row in rows[1:]:
        indicator, scope = row[4], row[5]
        if scope in PLACEHOLDERS:
            filled.extend([*head(row)[:5], lang, _n(n), row[7]]
                          for lang, n in sorted(config.moderator_languages.items()) if lang not in named)
            continue
        if indicator.startswith("Number of internal"):
            value = _n(config.internal_moderators)
        elif indicator.startswith("Number of external"):
            value = _n(config.external_moderators)
        elif scope == "Total number":
            value = _n(sum(config.moderator_languages.values()) if config.moderator_languages else None)
        else:
            value = _n(config.moderator_languages.get(scope))
        filled.append([*head(row)[:6], value, row[7]])
    out[PARTS[8]] = filled

    # Part 10: average monthly active recipients (the platform's figure)
    rows = template(PARTS[9])
    filled = [rows[0]]
    for row in rows[1:]:
        if row[5] in PLACEHOLDERS:
            filled.extend([*head(row)[:5], s, str(n)] for s, n in sorted(config.amar.items())
                          if s not in ("TOTAL", "AT", "SE"))
        else:
            filled.append([*head(row)[:6], _n(config.amar.get(row[5]))])
    out[PARTS[9]] = filled

    # Part 11: free text
    rows = template(PARTS[10])
    out[PARTS[10]] = [rows[0]] + [[*head(row)[:4], config.qualitative[i] if i < len(config.qualitative) else ""]
                                  for i, row in enumerate(rows[1:])]
    return out


class _Under:
    """The cells a row's category label takes (a keyword row its own, a statement category its keywords too, TOTAL
    every cell), computed once per label."""

    def __init__(self, cells: Cells, labels: _Labels) -> None:
        self.cells = cells
        self.labels = labels
        self.by_category: dict[str, dict[Cell, Tally]] = {}
        for cell, tally in cells.items():
            self.by_category.setdefault(cell.category, {})[cell] = tally
        self.memo: dict[tuple[str, str], dict[Cell, Tally]] = {}

    def __call__(self, statement: str, label: str) -> dict[Cell, Tally]:
        key = ("", "TOTAL") if label == "TOTAL" else (statement, label)
        if key not in self.memo:
            self.memo[key] = {c: t for category, sub in self.by_category.items()
                              if self.labels.matches(category, statement, label) for c, t in sub.items()}
        return self.memo[key]


def from_cells(cells: Cells) -> CellsFor:
    """``dsa_report``'s reader over cells already counted (the direct scan): each cut summed in Python."""
    def read(keep: tuple[str, ...], only: tuple[str, ...] = ()) -> Cells:
        return project(cells, keep, only)

    return read


def _flatten(rows: list[list[str]], column: int, fill: Callable[[str, str, list[str]], list[list[str]]]
             ) -> list[list[str]]:
    out, statement = [rows[0]], ""
    for row in rows[1:]:
        label = row[column]
        if label.startswith("STATEMENT_CATEGORY_"):
            statement = label
        out.extend(fill(statement, label, row))
    return out


class _Part8:
    """Part 8's values: measures by automated means or not, and accuracy, precision and recall estimated from
    reversals and misses (``metrics.Figures``), per scope (total, own initiative, notices, each language), each
    computed once from the cells by language."""

    def __init__(self, cells: Cells) -> None:
        self.cells = cells
        self.by_language: dict[str, dict[Cell, Tally]] = {}
        for cell, tally in cells.items():
            self.by_language.setdefault(cell.language, {})[cell] = tally
        self.memo: dict[str, tuple[Figures, int]] = {}

    def scope(self, scope: str) -> tuple[Figures, int]:
        if scope not in self.memo:
            own = scope.startswith("Own-initiative")
            taken = self.cells if scope == "Total number" or own else self.by_language.get(scope, {})
            if own:  # own-initiative actions, and misses found at own initiative (reach)
                taken = {c: t for c, t in taken.items()
                         if c.metric not in (Metric.ACTION, Metric.AUTOMATED_MISSED) or c.proactive}
            automated = sum(t.count for c, t in taken.items()
                            if c.metric == Metric.ACTION and c.path == queries.Path.AUTOMATED)
            [f] = figures(taken)
            self.memo[scope] = f, automated
        return self.memo[scope]

    def value(self, indicator: str, scope: str) -> str:
        if scope.startswith("NAM"):
            trusted = scope == "NAM Trusted Flagger"
            notices = sum(t.count for c, t in self.cells.items() if c.metric == Metric.NOTICE
                          and (not trusted or c.source == queries.Source.TRUSTED_FLAGGER))
            if indicator.startswith("Number of notices solely"):
                return "0"  # every notice goes to a person
            if indicator.startswith("Number of notices not"):
                return str(notices)
            return ""
        f, automated = self.scope(scope.strip())
        if indicator.startswith("Number of measures solely"):
            return str(automated)
        if indicator.startswith("Number of measures not"):
            return str((f.actioned or 0) - automated)
        if indicator.endswith("Precision"):
            return _rate(f.automated_precision)
        if indicator.endswith("Recall"):
            return _rate(f.automated_recall)
        if indicator.endswith("Accuracy"):
            return _rate(f.automated_accuracy)
        return ""

    @staticmethod
    def context(indicator: str, scope: str, given: str) -> str:
        """The template's contextual information, or why a notice's accuracy is left empty."""
        if scope.startswith("NAM") and indicator.startswith("Accuracy"):
            return "Not applicable: no notice is processed by automated means alone"
        return given


# --- TCO ----------------------------------------------------------------------------------------------------------


class TcoProviderReport(BaseModel):
    """TCO Art. 7(3): the provider's figures for a calendar year (counted from the order log's roll-ups)."""

    year: int
    orders_received: int | None
    items_in_orders: int | None
    items_removed_or_disabled: int
    orders_executed: int | None
    orders_executed_within_1h: int | None
    orders_not_executed: int | None = Field(description="Annex III answers (reason in the order log)")
    reinstatements: int
    complaints: int | None
    complaints_upheld: int | None
    complaints_reversed: int | None
    measures_against_reupload: int = Field(description="uploads blocked at intake by a hash match of terrorist "
                                                       "content (own initiative, Art. 5 specific measures)")


def tco_provider(cells: Cells, year: int) -> TcoProviderReport:
    terrorist = _figures(cells, lambda c: c.category in ("terrorist_content", ""))
    orders = _figures(cells, lambda c: c.metric.startswith("order_"))
    executed_items = sum(t.items for c, t in cells.items() if c.metric == Metric.ORDER_EXECUTED)
    reupload = sum(t.count for c, t in cells.items() if c.metric == Metric.ACTION
                   and c.category == "terrorist_content" and c.source == queries.Source.HASH_MATCH)
    reinstated = sum(t.count for c, t in cells.items() if c.metric == Metric.REVERSAL
                     and c.category == "terrorist_content")
    return TcoProviderReport(
        year=year, orders_received=orders.orders_received, items_in_orders=orders.order_items,
        items_removed_or_disabled=executed_items, orders_executed=orders.orders_executed,
        orders_executed_within_1h=orders.orders_executed_within_1h, orders_not_executed=orders.orders_annex_iii,
        reinstatements=reinstated, complaints=terrorist.appeals_filed, complaints_upheld=terrorist.appeals_upheld,
        complaints_reversed=terrorist.appeals_reversed, measures_against_reupload=reupload)


class TcoAuthorityFigures(BaseModel):
    """TCO Art. 8: one competent authority's year, from the hub's records."""

    authority: str
    member_state: str
    removal_orders: int
    referrals: int
    items_in_orders: int
    executed: int
    not_executed: int = Field(description="Annex III answers received")
    scrutiny_cleared: int
    ended: int = Field(description="orders that ceased to have effect (scrutiny found an infringement, or revoked)")


def tco_authorities(session: Session, year: int) -> list[TcoAuthorityFigures]:
    """Each authority's orders issued in ``year`` and what became of them (the hub's event log)."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    owner = {ref: authority for ref, authority in session.execute(select(HubOrder.hub_reference,
                                                                          HubOrder.authority_id))}
    authorities = {a.id: a for a in session.scalars(select(Authority))}
    found: dict[int, TcoAuthorityFigures] = {
        a.id: TcoAuthorityFigures(authority=a.name, member_state=a.member_state, removal_orders=0, referrals=0,
                                  items_in_orders=0, executed=0, not_executed=0, scrutiny_cleared=0, ended=0)
        for a in authorities.values()}
    for event in session.scalars(select(HubEvent).where(HubEvent.at >= start, HubEvent.at < end)
                                 .order_by(HubEvent.id)):
        figures_of = found.get(owner.get(event.subject, -1))
        if figures_of is None:
            continue
        if event.kind == HubEventKind.ISSUED.value:
            issued = event_log.payload(event, Issued)
            if issued.kind == "removal_order":
                figures_of.removal_orders += 1
                figures_of.items_in_orders += issued.urls
            else:
                figures_of.referrals += 1
        elif event.kind == HubEventKind.FEEDBACK.value:
            figures_of.executed += 1
        elif event.kind == HubEventKind.INABILITY.value:
            figures_of.not_executed += 1
        elif event.kind == HubEventKind.SCRUTINY_CLEARED.value:
            figures_of.scrutiny_cleared += 1
        elif event.kind == HubEventKind.ENDED.value:
            figures_of.ended += 1
    return sorted(found.values(), key=lambda f: (f.member_state, f.authority))


# --- writing ------------------------------------------------------------------------------------------------------


def csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def file_name(part: str) -> str:
    return f"{PREFIX}{part}.csv"


def archive(report: dict[str, list[list[str]]]) -> bytes:
    """The eleven CSV files in one ZIP archive (what the Commission's database takes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for part in PARTS:
            z.writestr(file_name(part), csv_text(report[part]))
    return buffer.getvalue()


def markdown(report: dict[str, list[list[str]]]) -> str:
    """The report for people: each part a table, rows with no value left out of Parts 2-6."""
    out = []
    for part in PARTS:
        rows = report[part]
        out.append(f"## Part {part.replace('_', ' ', 1)}\n")
        header, body = rows[0], rows[1:]
        if part[0] in "23456" and part[:2] != "10":
            body = [r for r in body if any(v not in ("", "0", "0.00") for v in r[5:])] or body[:1]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + " --- |" * len(header))
        out.extend("| " + " | ".join(v.replace("|", "/").replace("\n", " ") for v in r) + " |" for r in body)
        out.append("")
    return "\n".join(out)
