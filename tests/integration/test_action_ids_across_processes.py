"""Action IDs of a run depend on code and inputs only: same code, same names; edited body, new names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

WORKFLOW = textwrap.dedent(
    """
    import asyncio
    import json
    import sys
    import flyte

    env = flyte.TaskEnvironment(name="ids")

    @env.task
    async def leaf(x: int) -> int:
        return x * 2

    @env.task
    async def main(n: int) -> int:
        return sum(await asyncio.gather(*[leaf(i % 3) for i in range(n)]))

    run = flyte.with_runcontext(mode="local").run(main, n=int(sys.argv[1]))
    print(json.dumps([a["name"] for a in run.actions()]))
    """
)


def names(tmp_path: Path, code: str, n: int) -> list[str]:
    script = tmp_path / "ids.py"
    script.write_text(code)
    env = {**os.environ, "FLYTE_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, str(script), str(n)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_code_same_ids_and_edits_change_them(tmp_path: Path) -> None:
    first = names(tmp_path, WORKFLOW, 9)
    assert len(first) == 10 and len(set(first)) == 10
    assert names(tmp_path, WORKFLOW, 9) == first
    # More calls: the first nine keep their names (same parent, same call sequence).
    assert set(first) <= set(names(tmp_path, WORKFLOW, 12))
    edited = names(tmp_path, WORKFLOW.replace("return x * 2", "return x * 3"), 9)
    assert edited[0] == first[0] == "a0"
    assert set(edited[1:]).isdisjoint(first[1:])
