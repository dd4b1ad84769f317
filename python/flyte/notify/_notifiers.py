"""What to tell whom when a run ends: e-mail, Slack, Teams, or any webhook.

Messages are templates; these names are filled in with the finished run's values:
``{{.Run.Name}}``, ``{{.Run.Project}}``, ``{{.Run.Domain}}``, ``{{.Phase}}`` and ``{{.Error}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flyte.models import ActionPhase

#: The phases a run ends in, which notifications can be sent for.
SUPPORTED_PHASES = (ActionPhase.SUCCEEDED, ActionPhase.FAILED, ActionPhase.TIMED_OUT, ActionPhase.ABORTED)

HttpMethod = Literal["POST", "PUT", "PATCH", "GET", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]


def _phases(kind: str, value: object) -> tuple[ActionPhase, ...]:
    items = (value,) if isinstance(value, (str, ActionPhase)) else value
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise TypeError(f"{kind}: on_phase must be an ActionPhase or a tuple of them, got {value!r}")
    phases = []
    for item in items:
        try:
            phase = ActionPhase(item)
        except ValueError:
            raise ValueError(f"{kind}: {item!r} is not an ActionPhase") from None
        if phase not in SUPPORTED_PHASES:
            raise ValueError(
                f"{kind}: a notification on {phase.value} cannot be sent: runs end in "
                f"{', '.join(p.value for p in SUPPORTED_PHASES)}"
            )
        phases.append(phase)
    if not phases:
        raise ValueError(f"{kind}: on_phase needs at least one phase")
    return tuple(dict.fromkeys(phases))


def _addresses(kind: str, field: str, value: object, required: bool) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(a, str) and "@" in a for a in items):
        raise ValueError(f"{kind}: {field} must be e-mail addresses, got {value!r}")
    if required and not items:
        raise ValueError(f"{kind}: {field} needs at least one address")
    return tuple(items)


def _text(kind: str, field: str, value: object, required: bool = True) -> None:
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{kind}: {field} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class NamedRule:
    """A notification rule a cluster's administrators defined, by name."""

    name: str

    def __post_init__(self) -> None:
        _text("NamedRule", "name", self.name)


@dataclass(frozen=True, kw_only=True)
class Notification:
    """Something to send when a run ends in one of ``on_phase``."""

    on_phase: ActionPhase | tuple[ActionPhase, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_phase", _phases(type(self).__name__, self.on_phase))


@dataclass(frozen=True, kw_only=True)
class NamedDelivery(Notification):
    """A delivery channel a cluster's administrators configured (a Slack channel, a mailing
    list), by name."""

    name: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _text("NamedDelivery", "name", self.name)


@dataclass(frozen=True, kw_only=True)
class Email(Notification):
    """An e-mail to ``recipients`` (and ``cc``, ``bcc``); ``html_body`` adds an HTML part."""

    recipients: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = "Run {{.Run.Name}} {{.Phase}}"
    body: str = "Run: {{.Run.Name}}\nProject/Domain: {{.Run.Project}}/{{.Run.Domain}}\nPhase: {{.Phase}}\nError: {{.Error}}\n"
    html_body: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "recipients", _addresses("Email", "recipients", self.recipients, True))
        object.__setattr__(self, "cc", _addresses("Email", "cc", self.cc, False))
        object.__setattr__(self, "bcc", _addresses("Email", "bcc", self.bcc, False))
        _text("Email", "subject", self.subject)
        _text("Email", "body", self.body, required=False)
        if self.html_body is not None:
            _text("Email", "html_body", self.html_body)


@dataclass(frozen=True, kw_only=True)
class Slack(Notification):
    """A message to a Slack incoming webhook: ``message`` as text, or Block Kit ``blocks``."""

    webhook_url: str
    message: str | None = None
    blocks: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _text("Slack", "webhook_url", self.webhook_url)
        if self.blocks is not None:
            if not isinstance(self.blocks, Sequence) or not all(isinstance(b, Mapping) for b in self.blocks):
                raise TypeError(
                    f"Slack: blocks must be a list of Block Kit blocks (dicts), got {self.blocks!r}"
                )
            object.__setattr__(self, "blocks", tuple(dict(b) for b in self.blocks))
        if self.message is None and self.blocks is None:
            object.__setattr__(
                self,
                "message",
                "Run: {{.Run.Name}} finished with phase {{.Phase}}\n | {{.Run.Project}}/{{.Run.Domain}}\n",
            )


@dataclass(frozen=True, kw_only=True)
class Teams(Notification):
    """A message to a Microsoft Teams incoming webhook: ``title`` and ``message``, or an
    Adaptive ``card``."""

    webhook_url: str
    title: str = "Run {{.Run.Name}} {{.Phase}}"
    message: str | None = None
    card: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _text("Teams", "webhook_url", self.webhook_url)
        if self.card is not None and not isinstance(self.card, Mapping):
            raise TypeError(f"Teams: card must be an Adaptive Card (a dict), got {self.card!r}")
        if self.message is None and self.card is None:
            object.__setattr__(
                self,
                "message",
                "Run: {{.Run.Name}}\nProject/Domain: {{.Run.Project}}/{{.Run.Domain}}\nPhase: {{.Phase}}\nError: {{.Error}}\n",
            )


@dataclass(frozen=True, kw_only=True)
class Webhook(Notification):
    """An HTTP request to ``url``: ``body`` is sent as JSON (every string in it is a template)."""

    url: str
    method: HttpMethod = "POST"
    headers: dict[str, str] | None = None
    body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _text("Webhook", "url", self.url)
        if self.method not in HttpMethod.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"Webhook: method {self.method!r} is not an HTTP method")
        if self.headers is not None and (
            not isinstance(self.headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items())
        ):
            raise TypeError(f"Webhook: headers must map strings to strings, got {self.headers!r}")
        if self.body is not None and not isinstance(self.body, Mapping):
            raise TypeError(f"Webhook: body must be a dict (sent as JSON), got {self.body!r}")
        if self.body is None:
            object.__setattr__(
                self,
                "body",
                {
                    "run": "{{.Run.Name}}",
                    "project": "{{.Run.Project}}",
                    "domain": "{{.Run.Domain}}",
                    "phase": "{{.Phase}}",
                    "error": "{{.Error}}",
                },
            )
