"""flyte.extras.ContainerTask: an image's own program, with no SDK inside, run with buildah in
local mode and on the embedded backend alike: inputs staged as files (and inputs.json), values
in arguments, outputs read back from files, failures reported with the program's output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import flyte
import flyte.errors
from flyte.extras import ContainerTask
from flyte.io import Dir, File

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The program the image runs: Python from the image, no SDK. It echoes what it was given.
PROGRAM = r"""
import json, os, sys
inp, out = "/var/inputs", "/var/outputs"
meta = json.load(open(os.path.join(inp, "inputs.json")))
who = open(os.path.join(inp, "who")).read()
n = int(open(os.path.join(inp, "n")).read())
doc = open(os.path.join(inp, "doc")).read()
open(os.path.join(out, "greeting"), "w").write(f"hello {who} {sys.argv[1]} {sys.argv[2]} {meta['wait']}\n")
open(os.path.join(out, "doubled"), "w").write(str(n * 2))
open(os.path.join(out, "took.txt"), "w").write("1m30s")
open(os.path.join(out, "copy"), "w").write(doc.upper())
os.makedirs(os.path.join(out, "parts"))
for i in range(n):
    open(os.path.join(out, "parts", f"p{i}"), "w").write(str(i))
"""


def _greet(image: str) -> ContainerTask:
    return ContainerTask(
        name="greet",
        image=image,
        command=["python3", "-c", PROGRAM],
        arguments=["{{.inputs.n}}", "{{ .Inputs.loud }}"],
        inputs={"who": str, "n": int, "loud": bool, "wait": timedelta, "doc": File},
        outputs={"greeting": str, "doubled": int, "took": timedelta, "copy": File, "parts": Dir},
    )


@pytest.fixture
def image(debian_python: str, containers: dict[str, str]) -> str:
    return debian_python


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[str]:
    from flyte import _core

    b = _core.Backend(str(tmp_path / "backend"), str(Path(sys.executable).parent), port=0)
    try:
        yield b.endpoint
    finally:
        b.shutdown()


def _check(outputs: Any) -> None:
    greeting, doubled, took, copy, parts = outputs
    assert greeting == "hello world 3 true 90000000000"
    assert doubled == 6 and took == timedelta(minutes=1, seconds=30)
    assert isinstance(copy, File) and copy.open_sync().read() == b"SOME TEXT"
    assert isinstance(parts, Dir) and sorted(f.name for f in parts.walk_sync()) == ["p0", "p1", "p2"]


@pytest.mark.parametrize("where", ["local", "remote"])
def test_an_image_runs_with_its_inputs_as_files_and_gives_outputs_back(
    where: str, image: str, backend: str, tmp_path: Path
) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("some text")
    if where == "remote":
        flyte.init(endpoint=backend, insecure=True, root_dir=tmp_path)
    greet = _greet(image)
    run = flyte.with_runcontext(mode=where).run(
        greet, who="world", n=3, loud=True, wait=timedelta(seconds=90), doc=File.from_local_sync(str(doc))
    )
    _check(run.wait().outputs())


def test_failures_say_what_the_program_said(image: str, tmp_path: Path) -> None:
    def task(script: str, **kw: Any) -> ContainerTask:
        return ContainerTask(
            name=f"fails_{len(script)}",
            image=image,
            command=["sh", "-c", script],
            outputs={"x": int},
            **kw,
        )

    with pytest.raises(flyte.errors.RuntimeUserError, match=r"(?s)exited with status 3.*disk on fire"):
        flyte.with_runcontext(mode="local").run(task("echo disk on fire; exit 3")).wait()
    with pytest.raises(flyte.errors.RuntimeUserError, match="the container reported an error: bad input"):
        flyte.with_runcontext(mode="local").run(task("printf 'bad input' > /var/outputs/_ERROR")).wait()
    with pytest.raises(flyte.errors.RuntimeUserError, match="wrote no output 'x'"):
        flyte.with_runcontext(mode="local").run(task("true")).wait()
    with pytest.raises(flyte.errors.RuntimeUserError, match="output 'x': invalid literal"):
        flyte.with_runcontext(mode="local").run(task("echo many > /var/outputs/x")).wait()


def test_named_dirs_lists_and_yaml(image: str, tmp_path: Path) -> None:
    files = []
    for name in ("a.fa", "b.fa"):
        (tmp_path / name).write_text(name)
        files.append(File.from_local_sync(str(tmp_path / name)))
    listing = ContainerTask(
        name="lists",
        image=image,
        command=[
            "sh",
            "-c",
            "ls /var/inputs/reads /var/inputs/ref > /var/outputs/seen; cp /var/inputs/inputs.yaml /var/outputs/meta",
        ],
        inputs={"reads": list[File], "ref": File, "ks": list[int]},
        outputs={"seen": str, "meta": File},
        metadata_format="YAML",
        file_input_layout="NAMED_DIR",
    )
    seen, meta = (
        flyte.with_runcontext(mode="local")
        .run(listing, reads=files, ref=files[0], ks=[1, 2])
        .wait()
        .outputs()
    )
    listed = dict(block.split(":\n", 1) for block in seen.strip().split("\n\n"))
    assert {k: v.split() for k, v in listed.items()} == {
        "/var/inputs/reads": ["a.fa", "b.fa"],
        "/var/inputs/ref": ["a.fa"],
    }
    import yaml

    assert yaml.safe_load(meta.open_sync().read()) == {
        "ks": [1, 2],
        "reads": ["/var/inputs/reads/a.fa", "/var/inputs/reads/b.fa"],
        "ref": "/var/inputs/ref/a.fa",
    }


def test_the_spec_carries_the_command_and_the_data_contract(image: str) -> None:
    from flyte.extras import serialize

    spec = serialize(_greet(image))
    template = spec.task_template
    assert template.type == "raw-container"
    assert list(template.container.args[:2]) == ["python3", "-c"] and template.container.image == image
    assert template.container.data_config.input_path == "/var/inputs"
    assert template.container.data_config.enabled
    other = _greet(image)
    other._args = ["{{.inputs.n}}"]
    assert other.body_hash != _greet(image).body_hash
    with pytest.raises(ValueError, match="command must be a list of strings"):
        ContainerTask(name="bad", image=image, command="ls")  # type: ignore[arg-type]
    assert json.dumps(template.container.data_config.format)
