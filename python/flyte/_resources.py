"""Compute resources a task asks for: CPU, memory, GPU, disk and shared memory."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Tuple, Union, get_args

if TYPE_CHECKING:
    from fractions import Fraction

GPUType = Literal[
    "A10",
    "A10G",
    "A100",
    "A100 80G",
    "B200",
    "H100",
    "H200",
    "L4",
    "L40s",
    "T4",
    "V100",
    "RTX PRO 6000",
    "GB10",
]
SUPPORTED_GPUS: tuple[str, ...] = get_args(GPUType)

# Multi-instance GPU profiles the platform can schedule; a device missing here cannot be partitioned.
MIG_PARTITIONS: dict[str, tuple[str, ...]] = {
    "A100": ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100 80G": ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
}

CPUAmount = Union[int, float, str]
CPUSpec = Union[CPUAmount, Tuple[CPUAmount, CPUAmount]]
MemorySpec = Union[str, Tuple[str, str]]

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# Kubernetes quantity grammar. The exponent branch comes first so that "1E3" is read as 1000
# and only a bare trailing "E" means exa.
_QUANTITY_RE = (
    r"(?a)^(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
_CPU_RE = r"(?a)^(?:\d+(?:\.\d*)?|\.\d+)m?$"


def parse_quantity(value: str) -> Fraction:
    """Exact value of a Kubernetes quantity such as ``"512Mi"``, ``"1G"`` or ``"500m"``.

    Raises ``ValueError`` for anything Kubernetes would reject, including ``"4GB"`` and ``"4gi"``.
    """
    from fractions import Fraction

    if not isinstance(value, str):
        raise TypeError(f"a quantity must be a string like '4Gi', got {type(value).__name__} {value!r}")
    m = re.fullmatch(_QUANTITY_RE, value)
    if m is None:
        raise ValueError(f"{value!r} is not a valid quantity; use e.g. '4Gi' or '512Mi'")
    number = Fraction(m.group("num"))
    if m.group("exp"):
        return number * Fraction(10) ** int(m.group("exp")[1:])
    suffix = m.group("suffix") or ""
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    return number * Fraction(10) ** _DECIMAL_EXPONENTS[suffix]


def quantity_to_bytes(value: str) -> int:
    """Bytes in a memory-like quantity, rounded up the way the kubelet rounds fractional bytes."""
    return math.ceil(parse_quantity(value))


def cpu_to_cores(value: CPUAmount) -> float:
    """Cores in a CPU amount given as ``2``, ``0.5``, ``"2"`` or ``"500m"``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a CPU amount must be an int, float or str like '500m', got {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(_CPU_RE, value):
            raise ValueError(f"{value!r} is not a valid CPU amount; use e.g. 2, 0.5, '2' or '500m'")
        return float(parse_quantity(value))
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a valid CPU amount; use e.g. 2, 0.5, '2' or '500m'")
    return float(value)


def _suggest_gpu(device: str) -> str:
    folded = {d.casefold().replace(" ", ""): d for d in SUPPORTED_GPUS}
    match = folded.get(device.casefold().replace(" ", "").replace("-", ""))
    if match is not None:
        return f"did you mean {match!r}?"
    return "supported types: " + ", ".join(repr(d) for d in SUPPORTED_GPUS)


@dataclass(frozen=True)
class GPU:
    """A typed GPU request, optionally for a MIG partition of the device.

    ``GPU("A100", count=1, partition="1g.5gb")`` asks for one 1g.5gb slice of an A100.
    """

    device: str
    count: int = 1
    partition: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.device, str):
            raise TypeError(f"GPU(device={self.device!r}) must be a string such as 'A100'")
        if self.device not in SUPPORTED_GPUS:
            raise ValueError(
                f"GPU(device={self.device!r}) is not a supported GPU type; {_suggest_gpu(self.device)}"
            )
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise TypeError(f"GPU(count={self.count!r}) must be an int >= 1")
        if self.count < 1:
            raise ValueError(f"GPU(count={self.count!r}) must be at least 1; leave gpu unset for no GPU")
        if self.partition is not None:
            allowed = MIG_PARTITIONS.get(self.device)
            if allowed is None:
                supported = ", ".join(repr(d) for d in MIG_PARTITIONS)
                raise ValueError(
                    f"GPU(device={self.device!r}, partition={self.partition!r}): {self.device} cannot be "
                    f"partitioned; partitions exist for {supported}"
                )
            if self.partition not in allowed:
                raise ValueError(
                    f"GPU(device={self.device!r}, partition={self.partition!r}) is not a valid partition; "
                    f"use one of {', '.join(repr(p) for p in allowed)}"
                )

    @classmethod
    def parse(cls, spec: str) -> GPU:
        """``"A100:2"`` -> ``GPU("A100", 2)``; ``"T4"`` -> ``GPU("T4", 1)``."""
        device, sep, count_text = spec.rpartition(":")
        if not sep:
            return cls(spec.strip())
        if not count_text.strip().isdecimal():
            raise ValueError(f"gpu={spec!r} has a bad count {count_text!r}; use e.g. 'A100:2' or 'T4:1'")
        return cls(device.strip(), int(count_text))

    def __str__(self) -> str:
        text = f"{self.device}:{self.count}"
        return f"{text} ({self.partition})" if self.partition else text


_UNIT_TYPO_RE = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE])(?:i?[bB]|i)?\s*$"


def _guess_quantity(value: str) -> str:
    """A corrected spelling for common unit typos such as '4GB', '4gb' or '512 mi'."""
    m = re.fullmatch(_UNIT_TYPO_RE, value)
    if m is None:
        return ""
    unit = m.group(2).upper()
    guess = f"{m.group(1)}{unit}i"
    return f" (did you mean {guess!r}?)" if guess != value else ""


def _check_quantity(field_name: str, value: object) -> None:
    example = "use e.g. '4Gi' or '512Mi'"
    if not isinstance(value, str):
        raise TypeError(
            f"Resources({field_name}={value!r}) must be a string quantity; {example} (a bare number is ambiguous)"
        )
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise ValueError(
            f"Resources({field_name}={value!r}) is not a valid quantity; {example}{_guess_quantity(value)}"
        ) from None
    if amount <= 0:
        raise ValueError(f"Resources({field_name}={value!r}) must be greater than zero; {example}")


def _check_cpu(value: object, field_value: object) -> float:
    try:
        cores = cpu_to_cores(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"Resources(cpu={field_value!r}) must be an int, float or str; use e.g. cpu=2, cpu=0.5 or cpu='500m'"
        ) from None
    except ValueError:
        raise ValueError(
            f"Resources(cpu={field_value!r}) is not a valid CPU amount; use e.g. cpu=2, cpu=0.5 or cpu='500m'"
        ) from None
    if cores <= 0:
        raise ValueError(f"Resources(cpu={field_value!r}) must be greater than zero")
    return cores


def _as_pair(field_name: str, value: object) -> tuple[object, object] | None:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            example = "(1, 2)" if field_name == "cpu" else "('1Gi', '2Gi')"
            raise ValueError(
                f"Resources({field_name}={value!r}) must be a single value or a (request, limit) pair, "
                f"e.g. {field_name}={example}"
            )
        return value[0], value[1]
    return None


@dataclass(frozen=True)
class Resources:
    """What a task's container is given.

    ``cpu`` and ``memory`` take one value (request == limit) or a ``(request, limit)`` pair. ``memory``,
    ``disk`` and ``shm`` are Kubernetes quantities (``"512Mi"``, ``"4Gi"``, ``"1G"``); ``shm`` may also be
    ``"auto"``. ``gpu`` is a count, a ``"TYPE:COUNT"`` string such as ``"A100:2"``, or a :class:`GPU`.
    """

    cpu: CPUSpec | None = None
    memory: MemorySpec | None = None
    gpu: int | str | GPU | None = None
    disk: str | None = None
    shm: str | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None:
            pair = _as_pair("cpu", self.cpu)
            if pair is None:
                _check_cpu(self.cpu, self.cpu)
            else:
                request, limit = (_check_cpu(v, self.cpu) for v in pair)
                if request > limit:
                    raise ValueError(f"Resources(cpu={self.cpu!r}): the request must not exceed the limit")
                object.__setattr__(self, "cpu", pair)
        if self.memory is not None:
            pair = _as_pair("memory", self.memory)
            if pair is None:
                _check_quantity("memory", self.memory)
            else:
                for v in pair:
                    _check_quantity("memory", v)
                if parse_quantity(pair[0]) > parse_quantity(pair[1]):  # type: ignore[arg-type]
                    raise ValueError(
                        f"Resources(memory={self.memory!r}): the request must not exceed the limit"
                    )
                object.__setattr__(self, "memory", pair)
        if self.disk is not None:
            _check_quantity("disk", self.disk)
        if self.shm is not None and self.shm != "auto":
            if not isinstance(self.shm, str):
                raise TypeError(f"Resources(shm={self.shm!r}) must be 'auto' or a quantity such as '2Gi'")
            try:
                _check_quantity("shm", self.shm)
            except ValueError:
                raise ValueError(
                    f"Resources(shm={self.shm!r}) is not valid; use 'auto' or a quantity such as '2Gi'"
                ) from None
        self._check_gpu()

    def _check_gpu(self) -> None:
        gpu = self.gpu
        if gpu is None or isinstance(gpu, GPU):
            return
        if isinstance(gpu, bool):
            raise TypeError(
                f"Resources(gpu={gpu!r}) must be a count, 'TYPE:COUNT' (e.g. 'A100:1') or flyte.GPU(...)"
            )
        if isinstance(gpu, int):
            if gpu < 0:
                raise ValueError(f"Resources(gpu={gpu!r}) must not be negative")
            return
        if isinstance(gpu, str):
            if gpu.strip().isdecimal():
                raise ValueError(
                    f"Resources(gpu={gpu!r}): give a count as an int (gpu={int(gpu)}) or a type 'A100:{gpu}'"
                )
            try:
                GPU.parse(gpu)
            except ValueError as e:
                raise ValueError(f"Resources(gpu={gpu!r}) is not valid: {e}") from None
            return
        raise TypeError(
            f"Resources(gpu={gpu!r}) must be a count, 'TYPE:COUNT' (e.g. 'A100:1') or flyte.GPU(...)"
        )

    def cpu_range(self) -> tuple[float, float] | None:
        """(request, limit) in cores."""
        if self.cpu is None:
            return None
        if isinstance(self.cpu, tuple):
            return cpu_to_cores(self.cpu[0]), cpu_to_cores(self.cpu[1])
        cores = cpu_to_cores(self.cpu)
        return cores, cores

    def cpu_cores(self) -> float | None:
        """The CPU limit in cores, which is what a local backend can enforce."""
        r = self.cpu_range()
        return None if r is None else r[1]

    def memory_range(self) -> tuple[int, int] | None:
        """(request, limit) in bytes."""
        if self.memory is None:
            return None
        if isinstance(self.memory, tuple):
            return quantity_to_bytes(self.memory[0]), quantity_to_bytes(self.memory[1])
        n = quantity_to_bytes(self.memory)
        return n, n

    def memory_bytes(self) -> int | None:
        """The memory limit in bytes."""
        r = self.memory_range()
        return None if r is None else r[1]

    def disk_bytes(self) -> int | None:
        return None if self.disk is None else quantity_to_bytes(self.disk)

    def shm_bytes(self) -> int | None:
        """Shared memory in bytes; ``None`` when unset or ``"auto"`` (the node decides)."""
        if self.shm is None or self.shm == "auto":
            return None
        return quantity_to_bytes(self.shm)

    def gpu_spec(self) -> GPU | None:
        """The typed GPU request, or ``None`` when no type was named (unset or a bare count)."""
        if isinstance(self.gpu, GPU):
            return self.gpu
        if isinstance(self.gpu, str):
            return GPU.parse(self.gpu)
        return None

    def gpu_count(self) -> int:
        if self.gpu is None:
            return 0
        if isinstance(self.gpu, int):
            return self.gpu
        spec = self.gpu_spec()
        return spec.count if spec is not None else 0


__all__ = [
    "GPU",
    "MIG_PARTITIONS",
    "SUPPORTED_GPUS",
    "GPUType",
    "Resources",
    "cpu_to_cores",
    "parse_quantity",
    "quantity_to_bytes",
]
