"""``flyte.load_plugin_config``: a plugin's configuration object from YAML, nested dataclasses,
lists, enums and optional fields built by the types the class declares."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import pytest

import flyte
from flyte._plugin_config import PluginConfigError


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclasses.dataclass
class Worker:
    group_name: str
    replicas: int = 1
    start_params: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Head:
    cpu: float = 1.0


@dataclasses.dataclass
class ClusterConfig:
    workers: list[Worker]
    head: Head | None = None
    mode: Mode = Mode.SAFE
    tags: tuple[str, ...] = ()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plugin.yaml"
    path.write_text(text)
    return path


def test_a_nested_config_is_built_by_its_declared_types(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"""
plugin: {__name__}.ClusterConfig
config:
  workers:
    - group_name: gpu
      replicas: 2
      start_params: {{num-cpus: "0"}}
    - group_name: cpu
  head: {{cpu: 2}}
  mode: fast
  tags: [a, b]
""",
    )
    config = flyte.load_plugin_config(path)
    assert config == ClusterConfig(
        workers=[Worker("gpu", 2, {"num-cpus": "0"}), Worker("cpu")],
        head=Head(cpu=2.0),
        mode=Mode.FAST,
        tags=("a", "b"),
    )
    assert flyte.load_plugin_config(_write(tmp_path, f"plugin: {__name__}.Head\n")) == Head()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plugin: [", "not valid YAML"),
        ("config: {}", "'plugin' key"),
        ("plugin: NoDots", "class's full name"),
        ("plugin: no_such_module_xyz.Config", "no module 'no_such_module_xyz'"),
        (f"plugin: {__name__}.Missing", "has no Missing"),
        (f"plugin: {__name__}.Head\nconfig: {{gpu: 1}}", "Head has no gpu"),
        (f"plugin: {__name__}.Head\nconfig: {{cpu: lots}}", r"config\.cpu: expected float"),
        (
            f"plugin: {__name__}.ClusterConfig\nconfig: {{workers: [{{replicas: 2}}]}}",
            r"workers\[0\].*group_name",
        ),
        (f"plugin: {__name__}.ClusterConfig\nconfig: {{workers: [], mode: slow}}", "not a Mode"),
        (f"plugin: {__name__}.Head\nextra: 1", "unknown top-level keys"),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PluginConfigError, match=message):
        flyte.load_plugin_config(_write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="cannot read plugin config"):
        flyte.load_plugin_config(tmp_path / "nope.yaml")


@dataclasses.dataclass
class Pair:
    both: tuple[str, int]


def test_fixed_length_tuples_are_built_item_by_item(tmp_path: Path) -> None:
    assert flyte.load_plugin_config(
        _write(tmp_path, f"plugin: {__name__}.Pair\nconfig: {{both: [a, 1]}}")
    ) == Pair(("a", 1))
    with pytest.raises(PluginConfigError, match="a list of 2 items"):
        flyte.load_plugin_config(_write(tmp_path, f"plugin: {__name__}.Pair\nconfig: {{both: [a]}}"))
