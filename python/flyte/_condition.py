"""Conditions: a task pauses until someone outside the run supplies a value.

``flyte.new_condition`` declares one inside a running task and ``condition.wait()`` pauses until
it is signalled (``flyte.remote.Condition(...).signal(value)``, ``flyte signal condition``, or the
callback URI a webhook receiver was given). On a backend a condition is an action of its own,
kind condition, that runs nothing; in local mode its value is asked for on the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Dict, Generic, Literal, Type, TypeVar, Union

from flyte._context import current
from flyte.syncify import syncify

PromptType = Literal["text", "markdown"]

ConditionType = TypeVar("ConditionType", bool, int, float, str)

#: The types a condition's value can have.
CONDITION_TYPES: tuple[type, ...] = (bool, int, float, str)

#: What a webhook payload's strings may contain, to be replaced by where the condition is signalled.
CALLBACK_URI_VARIABLE = "{callback_uri}"


@dataclass
class ConditionWebhook:
    """An HTTP endpoint told when a condition is created: ``url`` receives a POST of
    ``payload`` as JSON, in whose strings ``{callback_uri}`` is replaced by the URI that signals
    the condition (POST the value there as JSON, e.g. ``true`` or ``{"value": 42}``)."""

    url: str
    payload: Dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"ConditionWebhook(url={self.url!r}) must be an http:// or https:// URL")
        if self.payload is not None and not isinstance(self.payload, dict):
            raise TypeError(
                f"ConditionWebhook(payload={self.payload!r}) must be a dict (sent as a JSON object)"
            )


@dataclass
class _Condition(Generic[ConditionType]):
    """A condition declared in a running task; ``wait()`` returns the value it is signalled with,
    as ``data_type``."""

    name: str
    prompt: str = "Approve?"
    prompt_type: PromptType = "text"
    data_type: Type[ConditionType] = bool  # type: ignore[assignment]
    description: str = ""
    timeout: Union[timedelta, int, float, None] = None
    webhook: ConditionWebhook | None = None
    #: The condition's action in the run, once named.
    _action_name: str | None = field(default=None, init=False, repr=False, compare=False)
    #: Whether the run knows the condition (its webhook was called).
    _registered: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a condition needs a non-empty name, got {self.name!r}")
        if self.data_type not in CONDITION_TYPES:
            raise TypeError(
                f"condition {self.name!r}: data_type={self.data_type!r} must be one of bool, int, float or str"
            )
        if self.prompt_type not in ("text", "markdown"):
            raise ValueError(f"condition {self.name!r}: prompt_type must be 'text' or 'markdown'")
        if self.webhook is not None and not isinstance(self.webhook, ConditionWebhook):
            raise TypeError(f"condition {self.name!r}: webhook must be a flyte.ConditionWebhook")
        seconds = self.timeout_seconds
        if seconds is not None and seconds <= 0:
            raise ValueError(f"condition {self.name!r}: timeout must be positive, got {self.timeout!r}")

    @property
    def timeout_seconds(self) -> float | None:
        if self.timeout is None:
            return None
        if isinstance(self.timeout, timedelta):
            return self.timeout.total_seconds()
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
            raise TypeError(
                f"condition {self.name!r}: timeout={self.timeout!r} must be seconds or a timedelta"
            )
        return float(self.timeout)

    @syncify
    async def wait(self) -> ConditionType:
        """Pauses until the condition is signalled and returns the value, as ``data_type``.

        Raises ``flyte.errors.ConditionTimedoutError`` when nobody signals it within its
        timeout, ``flyte.errors.ActionAbortedError`` when it is aborted.
        """
        c = _task_context("condition.wait()")
        return await c.run.wait_condition(c, self)


def _task_context(what: str) -> Any:
    c = current()
    if c is None or c.task is None:
        raise RuntimeError(f"{what} works inside a running task only (conditions pause a run)")
    return c


@syncify
async def new_condition(
    name: str,
    /,
    prompt: str = "Approve?",
    prompt_type: PromptType = "text",
    data_type: Type[ConditionType] = bool,  # type: ignore[assignment]
    description: str = "",
    timeout: Union[timedelta, int, float, None] = None,
    webhook: ConditionWebhook | None = None,
) -> _Condition[Any]:
    """Declares a condition in the running task: a value (``data_type``: bool, int, float or str)
    that someone outside the run supplies. ``await condition.wait.aio()`` (``condition.wait()`` in
    sync code) pauses until it is signalled. ``timeout`` (seconds or a timedelta) bounds the wait;
    ``webhook`` is told where to signal it when it is created.

    Outside a task the condition is only declared (there is no run to pause)."""
    condition: _Condition[Any] = _Condition(
        name=name,
        prompt=prompt,
        prompt_type=prompt_type,
        data_type=data_type,
        description=description,
        timeout=timeout,
        webhook=webhook,
    )
    c = current()
    if c is not None and c.task is not None:
        await c.run.register_condition(c, condition)
    return condition


def webhook_spec(webhook: ConditionWebhook) -> Any:
    """A webhook as flyteidl2's ``workflow.ConditionWebhook``."""
    from flyteidl2.workflow import run_definition_pb2

    spec = run_definition_pb2.ConditionWebhook(url=webhook.url)
    if webhook.payload is not None:
        try:
            spec.payload.update(webhook.payload)
        except (TypeError, ValueError) as e:
            raise TypeError(f"ConditionWebhook payload for {webhook.url} is not JSON-like: {e}") from None
    return spec


def literal_value(literal: Any, data_type: type) -> Any:
    """A signalled value (a primitive ``core.Literal``) as ``data_type``."""
    primitive = literal.scalar.primitive
    kind = primitive.WhichOneof("value")
    raw = {
        "boolean": primitive.boolean,
        "integer": primitive.integer,
        "float_value": primitive.float_value,
        "string_value": primitive.string_value,
    }.get(kind or "")
    if raw is None:
        raise TypeError(f"a condition's value must be a bool, int, float or string, got {literal}")
    return data_type(raw)


def to_literal(value: Any, data_type: type) -> Any:
    """``value`` (already of ``data_type``) as the primitive literal a condition stores."""
    from flyteidl2.core import literals_pb2

    primitive = literals_pb2.Primitive()
    if data_type is bool:
        primitive.boolean = bool(value)
    elif data_type is int:
        primitive.integer = int(value)
    elif data_type is float:
        primitive.float_value = float(value)
    else:
        primitive.string_value = str(value)
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=primitive))


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def parse_value(text: str, data_type: type) -> Any:
    """What someone typed for a condition, as ``data_type``; ValueError saying what is expected."""
    if data_type is bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"{text!r} is not yes or no (y/n, true/false, 1/0)")
    if data_type is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if data_type is float:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    return text


def type_from_literal_type(literal_type: Any) -> type | None:
    """The Python type of a condition's declared ``core.LiteralType`` (None if not a condition's)."""
    from flyteidl2.core import types_pb2

    if literal_type is None or literal_type.WhichOneof("type") != "simple":
        return None
    return {
        types_pb2.BOOLEAN: bool,
        types_pb2.INTEGER: int,
        types_pb2.FLOAT: float,
        types_pb2.STRING: str,
    }.get(literal_type.simple)


def literal_type_of(data_type: type) -> Any:
    from flyteidl2.core import types_pb2

    simple = {bool: types_pb2.BOOLEAN, int: types_pb2.INTEGER, float: types_pb2.FLOAT, str: types_pb2.STRING}
    return types_pb2.LiteralType(simple=simple[data_type])
