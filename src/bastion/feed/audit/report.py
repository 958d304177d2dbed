"""The audit report: a summary table by persona and condition, an SVG chart per persona of the share of harmful and
borderline items over time with and without the gate, and, when the run names an earlier one, the two side by side.

Charts are drawn here as inline SVG with presentation attributes only (no script, no style attribute): the report
is one self-contained file, and the console can show it under its Content-Security-Policy.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bastion.feed.audit.runner import WITH_GATE, WITHOUT_GATE, compare

W, H, LEFT, BOTTOM, TOP, RIGHT = 560, 220, 44, 30, 12, 12
#: Line colour and dash of each series (label, condition).
SERIES = (("harmful", WITHOUT_GATE, "#c0392b", ""), ("borderline", WITHOUT_GATE, "#e67e22", ""),
          ("harmful", WITH_GATE, "#c0392b", "6 4"), ("borderline", WITH_GATE, "#e67e22", "6 4"))
_CONDITION = {WITHOUT_GATE: "without the gate", WITH_GATE: "with the gate"}


def _minutes(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} min"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _withheld(figures: dict[str, Any]) -> str:
    reasons = ", ".join(f"{escape(code)} {n}" for code, n in figures["withheld"]["reasons"].items())
    return f"{figures['withheld']['items']}" + (f" <small>({reasons})</small>" if reasons else "")


def chart(persona: dict[str, Any], minutes: float) -> str:
    """Share of harmful and borderline items per time bucket, one line per label and condition."""
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(m: float) -> float:
        return LEFT + plot_w * m / minutes

    def y(share: float) -> float:
        return TOP + plot_h * (1 - share)

    title = f"Share of harmful and borderline items over time: {persona['id']}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{escape(title)}" class="audit-chart"><title>{escape(title)}</title>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#999"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{int(tick * 100)}%</text>')
    step = max(1, round(minutes / 6))
    for m in range(0, int(minutes) + 1, step):
        parts.append(f'<text x="{x(m):.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle">{m}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{H - 4}" font-size="10" text-anchor="middle">'
                 f'simulated minutes</text>')
    for label, condition, colour, dash in SERIES:
        figures = persona["conditions"].get(condition)
        if figures is None:
            continue
        points = " ".join(f"{x((b['start'] + b['end']) / 2):.1f},{y(b[label + '_share']):.1f}"
                          for b in figures["buckets"])
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dashed} '
                     f'data-series="{label}-{condition}"><title>{label}, {_CONDITION[condition]}</title></polyline>')
        first = figures["first_harmful_minute"] if label == "harmful" else None
        if first is not None:
            parts.append(f'<line x1="{x(first):.1f}" x2="{x(first):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                         f'stroke="{colour}" stroke-width="1"{dashed} data-first-harmful="{condition}"/>')
    parts.append("</svg>")
    return "".join(parts)


_LEGEND = ('<p class="audit-legend">Solid lines: without the gate; dashed: with the gate. Red: harmful; orange: '
           'borderline. A vertical line marks the first harmful item.</p>')


def fragment(run_id: int | None, settings: dict[str, Any], results: dict[str, Any],
             earlier: dict[str, Any] | None = None) -> str:
    """The report's body (no <html>): what the console page and the standalone file both show."""
    minutes = float(settings["minutes"])
    head = f"Feed audit {'#' + str(run_id) if run_id is not None else ''}".strip()
    out = [f'<section class="feed-audit"><h1>{escape(head)}: {escape(str(settings["scenario"]))}</h1>',
           '<p>Sock-puppet personas (new accounts: no follows, no searches) watched the feed of the '
           f'<strong>{escape(str(settings["recommender"]))}</strong> recommender for {minutes:g} simulated minutes '
           f'(seed {int(settings["seed"])}, catalogue of {int(settings["catalogue_size"])} items, slates of '
           f'{int(settings["slate"])}). Gate: <strong>{escape(str(settings["gate"]))}</strong>.</p>',
           '<div class="table-wrap"><table class="audit-summary"><thead><tr><th scope="col">Persona</th>'
           '<th scope="col">Age band</th><th scope="col">Condition</th><th scope="col" class="num">Items</th>'
           '<th scope="col" class="num">First harmful</th><th scope="col" class="num">Harmful</th>'
           '<th scope="col" class="num">Borderline</th><th scope="col" class="num">Withheld by the gate</th>'
           '</tr></thead><tbody>']
    for p in results["personas"]:
        for condition, f in p["conditions"].items():
            out.append(f'<tr data-persona="{escape(p["id"])}" data-condition="{condition}">'
                       f'<td>{escape(p["id"])}</td><td>{escape(p["band"])}</td><td>{_CONDITION[condition]}</td>'
                       f'<td class="num">{f["items"]}</td><td class="num first-harmful">'
                       f'{_minutes(f["first_harmful_minute"])}</td>'
                       f'<td class="num">{_pct(f["harmful_share"])}</td><td class="num">{_pct(f["borderline_share"])}'
                       f'</td><td class="num withheld">{_withheld(f) if condition == WITH_GATE else "-"}</td></tr>')
    out.append("</tbody></table></div>")
    if earlier is not None:
        out.append(_comparison(settings.get("compared_to"), earlier, results))
    out.append(_LEGEND)
    for p in results["personas"]:
        watch = ", ".join(f"watches {t} to {int(v * 100)}%" for t, v in p["watch"].items()) or "no watch behaviour"
        out.append(f'<figure class="audit-persona" id="persona-{escape(p["id"])}"><figcaption><strong>'
                   f'{escape(p["id"])}</strong>: {escape(p["description"])} (age {p["age"]}; interests '
                   f'{escape(", ".join(p["interests"]) or "none")}; {escape(watch)})</figcaption>'
                   f'{chart(p, minutes)}</figure>')
    out.append("</section>")
    return "".join(out)


def _comparison(earlier_id: object, earlier: dict[str, Any], results: dict[str, Any]) -> str:
    rows = ["<h2>Compared with run " + escape(str(earlier_id)) + "</h2>",
            '<div class="table-wrap"><table class="audit-compare"><thead><tr><th scope="col">Persona</th>'
            '<th scope="col">Condition</th><th scope="col">Figure</th><th scope="col" class="num">Before</th>'
            '<th scope="col" class="num">Now</th></tr></thead><tbody>']
    for r in compare(earlier, results):
        rows.append(f'<tr><td>{escape(r["persona"])}</td><td>{_CONDITION[r["condition"]]}</td>'
                    f'<td>{escape(r["figure"])}</td><td class="num">{escape(str(r["before"]))}</td>'
                    f'<td class="num">{escape(str(r["after"]))}</td></tr>')
    rows.append("</tbody></table></div>")
    return "".join(rows)


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.25rem .5rem}.num{text-align:right}figure{margin:1.5rem 0}")


def document(run_id: int | None, settings: dict[str, Any], results: dict[str, Any],
             earlier: dict[str, Any] | None = None) -> str:
    """The standalone HTML report (one file: no script, no external resource)."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Feed audit</title>'
            f"<style>{_STYLE}</style></head><body>{fragment(run_id, settings, results, earlier)}</body></html>")
