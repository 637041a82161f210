"""A notifier for unit tests of callers: it remembers what it was asked to deliver and touches nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.notifications.service import NotificationMessage, Notifier


@dataclass
class FakeNotifier(Notifier):
    """Collects every message it is given in ``messages``, repeats included.

    Like the inbox, it answers 0 for a ``dedupe_key`` it has already seen and 1 for a new one (it resolves no
    recipients, so it cannot count people); ``delivered()`` is what an inbox would hold, one per key.
    """

    messages: list[NotificationMessage] = field(default_factory=list)

    def notify(self, message: NotificationMessage) -> int:
        repeat = any(sent.dedupe_key == message.dedupe_key for sent in self.messages)
        self.messages.append(message)
        return 0 if repeat else 1

    def delivered(self) -> list[NotificationMessage]:
        first_by_key: dict[str, NotificationMessage] = {}
        for message in self.messages:
            first_by_key.setdefault(message.dedupe_key, message)
        return list(first_by_key.values())

    def kinds(self) -> list[str]:
        return [message.kind for message in self.delivered()]

    def for_case(self, case_id: str) -> list[NotificationMessage]:
        return [message for message in self.delivered() if message.case_id == case_id]
