"""Compute resources a task asks for: CPU, memory, GPU, disk and shared memory."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Tuple, Union, get_args

if TYPE_CHECKING:
    from fractions import Fraction

SharedGPUType = Literal["T4 shared", "L4 shared", "A10G shared", "A10 shared", "L40S shared"]
GPUType = Literal[
    "A2",
    "A10",
    "A10G",
    "A100",
    "A100_80G",
    "B200",
    "H100",
    "H200",
    "L4",
    "L40s",
    "T4",
    "V100",
    "RTX_PRO_4500",
    "RTX_PRO_6000",
    "GB10",
    SharedGPUType,
]
SUPPORTED_GPUS: tuple[str, ...] = get_args(GPUType)
#: Spellings with spaces that earlier releases took; they still work, as the underscore name.
DEPRECATED_GPU_NAMES: dict[str, str] = {"A100 80G": "A100_80G", "RTX PRO 6000": "RTX_PRO_6000"}
TPUType = Literal["V5E", "V5P", "V6E"]
NeuronType = Literal["Inf1", "Inf2", "Trn1", "Trn1n", "Trn2", "Trn2u"]
AMD_GPUType = Literal["MI100", "MI210", "MI250", "MI250X", "MI300A", "MI300X", "MI325X", "MI350X", "MI355X"]
HABANA_GAUDIType = Literal["Gaudi1"]
DeviceClass = Literal["GPU", "TPU", "NEURON", "AMD_GPU", "HABANA_GAUDI"]

_DEVICES_BY_CLASS: dict[str, tuple[str, ...]] = {
    "GPU": SUPPORTED_GPUS,
    "TPU": get_args(TPUType),
    "NEURON": get_args(NeuronType),
    "AMD_GPU": get_args(AMD_GPUType),
    "HABANA_GAUDI": get_args(HABANA_GAUDIType),
}

# Partitions a device can be split into (multi-instance GPU profiles, TPU slice topologies); a
# device missing here cannot be partitioned.
MIG_PARTITIONS: dict[str, tuple[str, ...]] = {
    "A100": ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100_80G": ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    "RTX_PRO_6000": ("1g.24gb", "2g.48gb", "4g.96gb"),
}
TPU_SLICES: dict[str, tuple[str, ...]] = {
    "V5E": ("1x1", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"),
    "V5P": (
        "2x2x1",
        "2x2x2",
        "2x4x4",
        "4x4x4",
        "4x4x8",
        "4x8x8",
        "8x8x8",
        "8x8x16",
        "8x16x16",
        "16x16x16",
        "16x16x24",
    ),
    "V6E": ("1x1", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"),
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


def _suggest(device: str, known: tuple[str, ...]) -> str:
    folded = {d.casefold().replace(" ", "").replace("_", ""): d for d in known}
    match = folded.get(device.casefold().replace(" ", "").replace("-", "").replace("_", ""))
    if match is not None:
        return f"did you mean {match!r}?"
    return "supported types: " + ", ".join(repr(d) for d in known)


@dataclass(frozen=True)
class Device:
    """An accelerator request: ``quantity`` devices of class ``device_class`` (``"GPU"``,
    ``"TPU"``, ...), optionally a named ``device`` model and a ``partition`` of it (a MIG
    profile such as ``"1g.5gb"``, a TPU slice such as ``"2x2"``). Usually made by
    :func:`GPU`, :func:`TPU`, :func:`Neuron`, :func:`AMD_GPU` or :func:`HABANA_GAUDI`."""

    quantity: int
    device_class: DeviceClass
    device: str | None = None
    partition: str | None = None

    def __post_init__(self) -> None:
        what = f"{self.device_class}({self.device!r})"
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise TypeError(f"{what}: quantity={self.quantity!r} must be an int >= 1")
        if self.quantity < 1:
            raise ValueError(
                f"{what}: quantity={self.quantity!r} must be at least 1; leave gpu unset for no accelerator"
            )
        known = _DEVICES_BY_CLASS.get(self.device_class)
        if known is None:
            raise ValueError(
                f"device_class={self.device_class!r} must be one of {', '.join(_DEVICES_BY_CLASS)}"
            )
        if self.device is None:
            if self.partition is not None:
                raise ValueError(f"{what}: a partition needs a device model")
            return
        if not isinstance(self.device, str):
            raise TypeError(
                f"{self.device_class} device {self.device!r} must be a string such as {known[0]!r}"
            )
        current = DEPRECATED_GPU_NAMES.get(self.device) if self.device_class == "GPU" else None
        if current is not None:
            object.__setattr__(self, "device", current)
        if self.device not in known:
            raise ValueError(
                f"{self.device!r} is not a supported {self.device_class} type; {_suggest(self.device, known)}"
            )
        if self.partition is not None:
            self._check_partition()

    def _check_partition(self) -> None:
        assert self.device is not None
        table = TPU_SLICES if self.device_class == "TPU" else MIG_PARTITIONS
        allowed = table.get(self.device)
        if allowed is None:
            partitionable = ", ".join(repr(d) for d in table)
            raise ValueError(
                f"{self.device_class}({self.device!r}, partition={self.partition!r}): {self.device} cannot be "
                f"partitioned; partitions exist for {partitionable}"
            )
        if self.partition not in allowed:
            raise ValueError(
                f"{self.device_class}({self.device!r}, partition={self.partition!r}) is not a valid partition; "
                f"use one of {', '.join(repr(p) for p in allowed)}"
            )

    @property
    def count(self) -> int:
        """The number of devices (``quantity``)."""
        return self.quantity

    @classmethod
    def parse(cls, spec: str) -> Device:
        """``"A100:2"`` -> two A100 GPUs; ``"V5E"`` -> one TPU v5e; the class follows the model."""
        device, sep, count_text = spec.rpartition(":")
        if not sep:
            device, count_text = spec, "1"
        device = device.strip()
        if not count_text.strip().isdecimal():
            raise ValueError(f"gpu={spec!r} has a bad count {count_text!r}; use e.g. 'A100:2' or 'T4:1'")
        device = DEPRECATED_GPU_NAMES.get(device, device)
        for device_class, known in _DEVICES_BY_CLASS.items():
            if device in known:
                return cls(int(count_text), device_class, device)  # type: ignore[arg-type]
        every = tuple(d for known in _DEVICES_BY_CLASS.values() for d in known)
        raise ValueError(f"{device!r} is not a supported accelerator; {_suggest(device, every)}")

    def __str__(self) -> str:
        text = f"{self.device or self.device_class}:{self.quantity}"
        return f"{text} ({self.partition})" if self.partition else text


def GPU(  # noqa: N802 - the reference SDK's name: a function that reads like a type
    device: str,
    quantity: int = 1,
    partition: str | None = None,
    *,
    count: int | None = None,
) -> Device:
    """``quantity`` NVIDIA GPUs of model ``device``, or one ``partition`` (MIG profile) of one:
    ``GPU("A100", 1, partition="1g.5gb")``. ``count`` is another name for ``quantity``."""
    if count is not None:
        quantity = count
    return Device(quantity, "GPU", device, partition)


def TPU(device: str, partition: str | None = None) -> Device:  # noqa: N802 - the reference's name
    """A Google Cloud TPU of generation ``device`` (``"V5E"``, ``"V5P"``, ``"V6E"``), optionally
    one slice topology of it (``partition="2x2"``)."""
    return Device(1, "TPU", device, partition)


def Neuron(device: str) -> Device:  # noqa: N802 - the reference's name
    """An AWS Neuron accelerator (``"Inf2"``, ``"Trn1"``, ...)."""
    return Device(1, "NEURON", device)


def AMD_GPU(device: str) -> Device:  # noqa: N802 - the reference's name
    """An AMD Instinct GPU (``"MI300X"``, ...)."""
    return Device(1, "AMD_GPU", device)


def HABANA_GAUDI(device: str) -> Device:  # noqa: N802 - the reference's name
    """An Intel Habana Gaudi accelerator (``"Gaudi1"``)."""
    return Device(1, "HABANA_GAUDI", device)


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
    ``"auto"``. ``gpu`` is a count, a ``"TYPE:COUNT"`` string such as ``"A100:2"``, or a :class:`Device`
    (``flyte.GPU("A100", 2)``, ``flyte.TPU("V5E", "2x2")``, ...).
    """

    cpu: CPUSpec | None = None
    memory: MemorySpec | None = None
    gpu: int | str | Device | None = None
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
        if gpu is None or isinstance(gpu, Device):
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
                Device.parse(gpu)
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

    def get_device(self) -> Device | None:
        """The accelerator asked for, or ``None`` (unset, or ``gpu=0``); a bare count is that
        many GPUs of no named model."""
        if self.gpu is None or isinstance(self.gpu, Device):
            return self.gpu
        if isinstance(self.gpu, str):
            return Device.parse(self.gpu)
        return Device(self.gpu, "GPU") if self.gpu else None

    def get_shared_memory(self) -> str | None:
        """The shared-memory size asked for: ``None`` (unset), ``""`` (``"auto"``: the node
        decides) or a quantity."""
        if self.shm is None:
            return None
        return "" if self.shm == "auto" else self.shm

    def gpu_spec(self) -> Device | None:
        """The accelerator, when a model was named (not for unset or a bare count)."""
        device = self.get_device()
        return device if device is not None and device.device is not None else None

    def gpu_count(self) -> int:
        device = self.get_device()
        return 0 if device is None else device.quantity


__all__ = [
    "AMD_GPU",
    "GPU",
    "HABANA_GAUDI",
    "TPU",
    "Device",
    "DeviceClass",
    "Neuron",
    "MIG_PARTITIONS",
    "SUPPORTED_GPUS",
    "GPUType",
    "Resources",
    "cpu_to_cores",
    "parse_quantity",
    "quantity_to_bytes",
]
