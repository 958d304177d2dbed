"""The one background loop: rounds run until stopped, failures are counted by type and never stop it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from bastion.core.worker import FAILING_SECONDS, Rounds, Worker
from tests.factories.waiting import until


def test_a_worker_is_failing_once_its_rounds_have_all_failed_for_a_while_and_a_good_round_mends_it() -> None:
    rounds = Rounds("w").failed(KeyError("x")).failed(ValueError("secret=1"))
    assert rounds.failures_in_a_row == 2 and not rounds.failing  # seconds of failures: a blip, not an outage
    long_ago = time.time() - FAILING_SECONDS
    assert replace(rounds, failing_since=long_ago).failing
    assert not replace(Rounds("w").failed(KeyError("x")), failing_since=long_ago).failing  # one round is no streak
    rounds = replace(rounds, failing_since=long_ago).failed(ValueError("secret=2"))
    assert rounds.failing and rounds.failing_since == long_ago and rounds.failures == 3
    assert rounds.last_error == "ValueError" and rounds.last_ok_at is None and rounds.last_failed_at is not None
    shown = rounds.as_status()
    assert shown["failing"] and "secret" not in str(shown)  # the type only: a message may hold a secret
    rounds = rounds.ok()
    assert not rounds.failing and rounds.failing_since is None and rounds.failures == 3
    shown = rounds.as_status()
    assert shown["failures_in_a_row"] == 0 and shown["last_error"] == "ValueError" and shown["failing_since"] is None
    assert shown["last_ok_at"].endswith("+00:00")


def test_a_worker_keeps_running_through_failing_rounds_and_counts_them() -> None:
    outcomes = iter([None, OSError("disk"), OSError("disk"), OSError("disk"), True, None])
    calls: list[float] = []
    errors: list[Exception] = []
    done = threading.Event()

    def round_() -> object:
        calls.append(time.monotonic())
        outcome = next(outcomes, None)
        if len(calls) >= 6:
            done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    worker = Worker(round_, 0.01, "w", on_error=errors.append)
    worker.start()
    try:
        assert done.wait(10)
        assert until(lambda: worker.rounds.last_ok_at is not None and worker.rounds.failures_in_a_row == 0)
        assert worker.running
    finally:
        worker.stop()
    assert not worker.running
    assert worker.rounds.failures == 3 and worker.rounds.last_error == "OSError" and not worker.rounds.failing
    assert [type(e) for e in errors] == [OSError] * 3
