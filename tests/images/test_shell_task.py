"""flyte.extras.shell: a bash script over a CLI image as a typed task, called from a Python task
in local mode and on the embedded backend: file lists expand as globs, scalars and switches
become flags, dicts become pairs, Glob/Stdout/int outputs come back typed, and a failing script
is reported with what it printed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import flyte
import flyte.errors
from flyte.extras.shell import Glob, Stdout, create
from flyte.io import File

sys.path.insert(0, str(Path(__file__).resolve().parent))

env = flyte.TaskEnvironment(name="shell_pipeline")

SCRIPT = """
for f in {inputs.docs}; do wc -w < "$f" | tr -d ' ' > {outputs.counts}/"$(basename "$f")".count; done
cat {inputs.docs} | wc -w | tr -d ' ' > {outputs.total}
echo "flags: {flags.loud} {flags.min_len} {flags.props} {flags.docs} note=[{inputs.note}]"
"""


def word_counter(image: str):  # type: ignore[no-untyped-def]
    return create(
        name="word_counter",
        image=image,
        inputs={
            "docs": list[File],
            "min_len": int,
            "loud": bool,
            "props": dict[str, str],
            "note": str | None,
        },
        outputs={"counts": Glob("*.count"), "total": int, "log": Stdout(str)},
        script=SCRIPT,
        flag_aliases={"min_len": "--min", "props": ("-D", "equals"), "docs": ("-i", "repeat")},
        defaults={"min_len": 3},
    )


@env.task
async def count_words(docs: list[File], image: str) -> tuple[list[str], int, str]:
    counts, total, log = await word_counter(image)(docs=docs, loud=True, props={"k": "v w"})
    names = sorted([f"{c.name}={Path(await c.download()).read_text().strip()}" for c in counts])
    return names, total, log


@env.task
async def fails(image: str) -> int:
    broken = create(
        name="broken",
        image=image,
        outputs={"n": int},
        script="echo 'looking for the reference' ; echo 'reference genome missing' >&2 ; exit 4",
    )
    return await broken()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[str]:
    from flyte import _core

    b = _core.Backend(str(tmp_path / "backend"), str(Path(sys.executable).parent), port=0)
    try:
        yield b.endpoint
    finally:
        b.shutdown()


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_script_over_a_cli_image_runs_as_a_typed_task(
    where: str, debian_python: str, containers: dict[str, str], backend: str, tmp_path: Path
) -> None:
    docs = []
    for name, text in (("a.txt", "one two three\n"), ("b.txt", "four five\n")):
        (tmp_path / name).write_text(text)
        docs.append(File.from_local_sync(str(tmp_path / name)))
    if where == "remote":
        flyte.init(endpoint=backend, insecure=True)
    names, total, log = (
        flyte.with_runcontext(mode=where).run(count_words, docs, debian_python).wait().outputs()
    )
    assert names == ["a.txt.count=3", "b.txt.count=2"] and total == 5
    assert log.split("note=")[0].split() == [
        "flags:",
        "-loud",
        "--min",
        "3",
        "-Dk=v",
        "w",
        "-i",
        "/var/inputs/docs/a.txt",
        "-i",
        "/var/inputs/docs/b.txt",
    ]
    assert log.strip().endswith("note=[]")

    with pytest.raises(
        flyte.errors.RuntimeUserError, match=r"(?s)exited with status 4.*reference genome missing"
    ):
        flyte.with_runcontext(mode=where).run(fails, debian_python).wait().outputs()


def test_scripts_are_checked_when_defined() -> None:
    with pytest.raises(KeyError, match="not one of the inputs"):
        create(name="t", image="debian", inputs={"a": int}, script="echo {inputs.b}")
    with pytest.raises(ValueError, match="is not a placeholder"):
        create(name="t", image="debian", script="echo {input.a}")
    with pytest.raises(KeyError, match="captures itself"):
        create(name="t", image="debian", outputs={"o": Stdout()}, script="echo hi > {outputs.o}")
    with pytest.raises(TypeError, match="not a shell task input type"):
        create(name="t", image="debian", inputs={"a": list[int]}, script="echo")
    with pytest.raises(TypeError, match="does not fit the input's type"):
        create(name="t", image="debian", inputs={"a": int}, defaults={"a": "3"}, script="echo {inputs.a}")
    tool = create(
        name="t", image="debian", inputs={"a": int, "b": str | None}, script="echo {inputs.a} {inputs.b}"
    )
    with pytest.raises(TypeError, match="missing required input 'a'"):
        tool.wire_inputs({})
    assert tool.wire_inputs({"a": 1}) == {"a": 1, "b": ""}
    assert tool.as_task().task_type == "raw-container"
