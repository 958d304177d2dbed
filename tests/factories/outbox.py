"""Outbox message kinds for tests of the outbox itself: declared like a domain's, so ``enqueue`` takes them."""

from __future__ import annotations

from bastion.core.outbox.kinds import MessageKind


class SampleMessage(MessageKind):
    ACTION = "moderation.action"
    K = "k"
    STEP = "test.step"
