"""Child-safety report documents: NCMEC ``<report>`` XML built and checked against the CyberTipline XSD.

Every report is validated before it is sent, so validation is on the sending path. This measures, in one run:

- baseline ``build``: ``reporting/ncmec.py: report_xml`` for a report of ``--files`` files (no schema check);
- ``build+validate``: the same, then ``ncmec.validate`` with lxml against the XSD (schema loaded once, cached);
- ``schema load``: loading and compiling the XSD once (what the first send of a process pays).

    python bench/reports.py [--reports 2000] [--files 20] [--xsd tests/data/ncmec/cybertipline-report.xsd]

Prints figures and the ratio against the baseline, then one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from lxml import etree

from bastion.reporting import ncmec

DEFAULT_XSD = Path(__file__).resolve().parents[1] / "tests" / "data" / "ncmec" / "cybertipline-report.xsd"


def _facts(i: int, files: int) -> ncmec.ReportFacts:
    return ncmec.ReportFacts(
        incident_type=ncmec.CSAM_INCIDENT, incident_at=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
        account_id=f"account-{i}", urgent_reason="" if i % 10 else "child at immediate risk",
        urls=[f"https://video.example/v/{i}-{f}" for f in range(files)], reference=f"ref-{i}",
        described_files=[f"c-{i}-{f} md5={'0' * 32} sha256={'0' * 64}" for f in range(files // 2)],
        also_reported_to="Also reported to the EU Centre under this provider reference.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--xsd", type=Path, default=DEFAULT_XSD)
    args = parser.parse_args()
    reporter = ncmec.Reporter(platform="Example Video Platform", email="child-safety@example.invalid")
    facts = [_facts(i, args.files) for i in range(args.reports)]

    start = time.perf_counter()
    etree.XMLSchema(etree.parse(str(args.xsd)))
    load = time.perf_counter() - start
    ncmec.validate(ncmec.report_xml(facts[0], reporter), args.xsd)  # warm the cached schema

    start = time.perf_counter()
    for f in facts:
        ncmec.report_xml(f, reporter)
    build = time.perf_counter() - start

    start = time.perf_counter()
    for f in facts:
        ncmec.validate(ncmec.report_xml(f, reporter), args.xsd)
    checked = time.perf_counter() - start

    per_build, per_checked = build / args.reports * 1e6, checked / args.reports * 1e6
    print(f"schema load (once per process): {load * 1000:.1f} ms")
    print(f"baseline build:       {args.reports / build:>10.0f} reports/s  ({per_build:.1f} µs each)")
    print(f"build+validate:       {args.reports / checked:>10.0f} reports/s  ({per_checked:.1f} µs each)")
    print(f"ratio build+validate / build: {checked / build:.2f}x the time")
    print(json.dumps({"reports": args.reports, "files": args.files, "schema_load_ms": round(load * 1000, 2),
                      "build_per_s": round(args.reports / build), "checked_per_s": round(args.reports / checked),
                      "ratio": round(checked / build, 3)}))


if __name__ == "__main__":
    main()
