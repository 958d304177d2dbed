"""Commands for minors' safety: check a rules file before it goes live, ask what one account may do to another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from bastion.cli.app import app
from bastion.cli.common import err, fail, open_db, out

minors_app = typer.Typer(help="Minors: interaction rules and their floor, ages and bands.", no_args_is_help=True)
app.add_typer(minors_app, name="minors")


@minors_app.command("check-rules")
def minors_check_rules(file: Annotated[Path | None, typer.Argument(
        help="a rules file (TOML); default: BASTION_MINORS_RULES, else Bastion's default rules")] = None) -> None:
    """Validate a rules file as the server would (the floor included): every problem, one per line; exit 1."""
    from bastion.core.config import Settings
    from bastion.minors.interfaces import RulesError
    from bastion.minors.rules import DEFAULT_RULES_PATH, load_rules

    path = file or Settings.from_env().minors_rules_path or DEFAULT_RULES_PATH
    try:
        rules = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems[:-1]:
            err.print(f"[red]error:[/red] {problem}", markup=True, highlight=False, soft_wrap=True)
        fail(exc.problems[-1])
    shadow = sum(1 for r in rules.rules if r.shadow)
    err.print(f"{path}: {rules.spec.name} {rules.spec.version}: {len(rules.rules)} rules ({shadow} shadow), "
              f"default {rules.default.value}; the floor holds", highlight=False)


@minors_app.command("ask")
def minors_ask(actor: Annotated[str, typer.Argument(help="account A (the one acting)")],
               target: Annotated[str, typer.Argument(help="account B (the one acted on)")],
               actor_age: Annotated[float | None, typer.Option(help="A's age in years (default: as recorded)")] = None,
               target_age: Annotated[float | None, typer.Option(help="B's age in years (default: as recorded)")] = None,
               follows: Annotated[bool, typer.Option(help="A follows B")] = False,
               followed_by: Annotated[bool, typer.Option(help="B follows A")] = False) -> None:
    """What can A do to B? Every action with its decision, rule and explanation; records nothing."""
    from bastion.core.clock import SystemClock
    from bastion.core.config import Settings
    from bastion.minors import interactions
    from bastion.minors.interfaces import QUESTION_ACTIONS, SOLO_ACTIONS
    from bastion.minors.rules import DEFAULT_RULES_PATH, RulesFile
    from bastion.minors.services import Minors

    for age in (actor_age, target_age):
        if age is not None and not 0 <= age <= 130:
            fail("an age is between 0 and 130 years")
    settings = Settings.from_env()
    db = open_db()
    m = Minors(db, SystemClock(), RulesFile(settings.minors_rules_path or DEFAULT_RULES_PATH))
    a, b = interactions.AccountRef(actor, actor_age), interactions.AccountRef(target, target_age)
    context = interactions.Context(follows=follows, followed_by=followed_by)
    checks = [interactions.Check(a, action, None if action in SOLO_ACTIONS else b, context)
              for action in QUESTION_ACTIONS]
    with db.read() as session:
        answers = interactions.decide(m, session, checks)
    err.print(f"{actor} is {answers[0].actor_band.value}, {target} is "
              f"{next(x.target_band for x in answers if x.target_band is not None).value}", highlight=False)
    table = Table("action", "decision", Column("rule", no_wrap=True, min_width=36), "explanation")
    for check, answer in zip(checks, answers, strict=True):
        table.add_row(check.action.value, answer.verdict.decision.value, answer.verdict.rule,
                      answer.verdict.explanation)
    out.print(table)
