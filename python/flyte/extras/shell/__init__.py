"""Shell tasks: a CLI tool in a container image (bedtools, samtools, ffmpeg, ...) as a typed
task, written as a bash script with ``{inputs.x}``, ``{flags.x}`` and ``{outputs.x}``.

```python
from flyte.extras.shell import Glob, create
from flyte.io import File

intersect = create(
    name="bedtools_intersect",
    image="quay.io/biocontainers/bedtools:2.31.1--hf5e1c6e_0",
    inputs={"a": File, "b": list[File], "wa": bool},
    outputs={"bed": Glob("*.bed")},
    script="bedtools intersect {flags.wa} -a {inputs.a} -b {inputs.b} > {outputs.bed}/out.bed",
)
```

Built on :class:`flyte.extras.ContainerTask`: it runs in local mode, on the embedded backend and
on a cluster alike.
"""

from flyte.extras.shell._task import create
from flyte.extras.shell._types import DictMode, FlagSpec, Glob, OutputSpec, Stderr, Stdout, listMode

__all__ = ["DictMode", "FlagSpec", "Glob", "OutputSpec", "Stderr", "Stdout", "create", "listMode"]
