"""The specification's (shared/seeds) v2 snippets that need no cluster, run as written.

Each snippet is copied verbatim; where a snippet uses a helper it never defines (e.g. a
`process` function), a PRELUDE defines it, and that is the only addition. Snippets run in
a fresh process, from an empty directory, with an empty HOME (so no config is found and
runs are local).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEADER = "import asyncio\nimport flyte\n"


def run_snippet(
    tmp_path: Path, code: str, *, argv: list[str] | None = None, files: dict[str, str] | None = None
) -> str:
    script = tmp_path / "snippet.py"
    script.write_text(textwrap.dedent(code))
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "FLYTE_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, str(script)] if argv is None else argv
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, f"snippet failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def flyte_run(tmp_path: Path, code: str, task: str, *inputs: str) -> str:
    flyte_exe = Path(sys.executable).parent / "flyte"
    (tmp_path / "snippet.py").write_text(textwrap.dedent(code))
    return run_snippet(tmp_path, code, argv=[str(flyte_exe), "run", "--local", "snippet.py", task, *inputs])


# -- 001: From Flyte 1 to 2 ------------------------------------------------------------------

SYNC_EXAMPLE = """
import flyte

env = flyte.TaskEnvironment("sync_example_env")

@env.task
def hello_world(name: str) -> str:
    return f"Hello, {name}!"

@env.task
def main(name: str) -> str:
    for i in range(10):
        hello_world(name)
    return "Done"

if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main, name="World")
    print(r.name)
    print(r.url)
    r.wait()
"""

ASYNC_EXAMPLE = """
import asyncio
import flyte

env = flyte.TaskEnvironment("async_example_env")

@env.task
async def hello_world(name: str) -> str:
    return f"Hello, {name}!"

@env.task
async def main(name: str) -> str:
    results = []
    for i in range(10):
        results.append(hello_world(name))
    await asyncio.gather(*results)
    return "Done"

if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main, name="World")
    print(r.name)
    print(r.url)
    r.wait()
"""

TRACE_EXAMPLE = """
import flyte

env = flyte.TaskEnvironment(name="trace_example_env")

@flyte.trace
async def call_llm(prompt: str) -> str:
    return "Initial response from LLM"

@env.task
async def finalize_output(output: str) -> str:
    return "Finalized output"

@env.task(cache=flyte.Cache(behavior="auto"))
async def main(prompt: str) -> str:
    output = await call_llm(prompt)
    output = await finalize_output(output)
    return output

if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main, prompt="Prompt to LLM")
    print(r.name)
    print(r.url)
    r.wait()
"""


@pytest.mark.parametrize("code", [SYNC_EXAMPLE, ASYNC_EXAMPLE, TRACE_EXAMPLE], ids=["sync", "async", "trace"])
def test_001_hello_examples(tmp_path: Path, code: str) -> None:
    out = run_snippet(tmp_path, code).split()
    assert out[0].startswith("r") and out[1].startswith("file://")


PURE_PYTHON = """
import flyte

env = flyte.TaskEnvironment(
    "hello_world",
    image=flyte.Image.from_debian_base().with_pip_packages("requests"),
)

@env.task
def mean(data: list[float]) -> float:
    return sum(data) / len(data)

@env.task
def main(data: list[float]) -> float:
    output = mean(data)

    # ✅ performing trivial operations in a workflow is allowed
    output = output / 100

    # ✅ if/else is allowed
    if output < 0:
        raise ValueError("Output cannot be negative")

    return output
"""


def test_001_pure_python(tmp_path: Path) -> None:
    assert "0.02" in flyte_run(tmp_path, PURE_PYTHON, "main", "--data", "[1, 2, 3]")


ASYNC_MODEL = """
import asyncio
import flyte

env = flyte.TaskEnvironment("data_pipeline")

@env.task
async def process_chunk(chunk_id: int, data: str) -> str:
    # This could be any computational work - CPU or I/O bound
    await asyncio.sleep(1)  # Simulating work
    return f"Processed chunk {chunk_id}: {data}"

@env.task
async def parallel_pipeline(data_chunks: list[str]) -> list[str]:
    # Create coroutines for all chunks
    tasks = []
    for i, chunk in enumerate(data_chunks):
        tasks.append(process_chunk(i, chunk))

    # Execute all chunks in parallel
    results = await asyncio.gather(*tasks)
    return results

@env.task
def legacy_computation(x: int) -> int:
    # Existing synchronous function works unchanged
    return x * x + 2 * x + 1

@env.task
async def modern_workflow(numbers: list[int]) -> list[int]:
    # Call sync tasks from async context using .aio()
    tasks = []
    for num in numbers:
        tasks.append(legacy_computation.aio(num))

    results = await asyncio.gather(*tasks)
    return results

@env.task
def process_item(i: int) -> str:
    return f"item {i}"

@env.task
def sync_map_example(n: int) -> list[str]:
    # Synchronous version for easier migration
    results = []
    for result in flyte.map(process_item, range(n)):
        if isinstance(result, Exception):
            raise result
        results.append(result)
    return results

@env.task
async def async_map_example(n: int) -> list[str]:
    # Async version using flyte.map - exact pattern from SDK examples
    results = []
    async for result in flyte.map.aio(process_item, range(n), return_exceptions=True):
        if isinstance(result, Exception):
            raise result
        results.append(result)
    return results

if __name__ == "__main__":
    local = flyte.with_runcontext(mode="local")
    print(local.run(parallel_pipeline, data_chunks=["a", "b", "c"]).result)
    print(local.run(modern_workflow, numbers=[1, 2, 3]).result)
    print(local.run(sync_map_example, n=3).result)
    print(local.run(async_map_example, n=3).result)
"""


def test_001_async_model_aio_and_map(tmp_path: Path) -> None:
    out = run_snippet(tmp_path, ASYNC_MODEL)
    assert "Processed chunk 2: c" in out
    assert "[4, 9, 16]" in out
    assert out.count("['item 0', 'item 1', 'item 2']") == 2


MIGRATION = """
import asyncio
import flyte

env = flyte.TaskEnvironment(name="my_task_env")

@env.task
def hello_world(name: str) -> str:
    return f"Hello, {name}!"

@env.task
def main(names: list[str]) -> list[str]:
    return flyte.map(hello_world, names)

@env.task
async def ahello_world(name: str) -> str:
    return f"Hello, {name}!"

@env.task
async def amain(names: list[str]) -> list[str]:
    return await asyncio.gather(*[ahello_world(name) for name in names])

if __name__ == "__main__":
    print(flyte.with_runcontext(mode="local").run(main, names=["a", "b"]).result)
    print(flyte.with_runcontext(mode="local").run(amain, names=["a", "b"]).result)
"""


def test_001_migration_sync_and_async(tmp_path: Path) -> None:
    assert run_snippet(tmp_path, MIGRATION).count("['Hello, a!', 'Hello, b!']") == 2


REUSE = """
import flyte

# Currently required to enable resuable containers
reusable_image = flyte.Image.from_debian_base().with_pip_packages("unionai-reuse>=0.1.10")

env = flyte.TaskEnvironment(
    name="reusable-env",
    resources=flyte.Resources(memory="1Gi", cpu="500m"),
    reusable=flyte.ReusePolicy(replicas=2, concurrency=1), # Specify reuse policy
    image=reusable_image  # Use the container image augmented with the unionai-reuse library.
)
print(env.name)
"""


def test_001_reusable_environment_definition(tmp_path: Path) -> None:
    assert "reusable-env" in run_snippet(tmp_path, REUSE)


# -- 000: migration guide ------------------------------------------------------------------------

CONFIG_IN_CODE = """
import flyte

# Programmatic configuration
flyte.init(
    endpoint="flyte.example.com",
    insecure=False,
    project="my-project",
    domain="development",
)
print("configured")
"""


def test_000_programmatic_init(tmp_path: Path) -> None:
    assert "configured" in run_snippet(tmp_path, CONFIG_IN_CODE)


ENV_CONFIG = """
import flyte

# Full TaskEnvironment example
env = flyte.TaskEnvironment(
    name="my_env",                           # Required: unique name
    image=flyte.Image.from_debian_base(), # Or string, or "auto"
    resources=flyte.Resources(
        cpu="2",
        memory="4Gi",
        gpu="A100:1",
        disk="10Gi",
        shm="auto",
    ),
    env_vars={"LOG_LEVEL": "INFO"},
    secrets=[
        flyte.Secret(key="api-key", as_env_var="API_KEY"),
    ],
    cache="auto",  # "auto", "override", "disable", or Cache object
    reusable=flyte.ReusePolicy(replicas=5, idle_ttl=60),
    queue="gpu-queue",
    interruptible=True,
)

# Task decorator can override some settings
@env.task(
    short_name="my_task",      # Display name
    cache="disable",           # Override cache
    retries=3,                 # Retry count
    timeout=3600,              # Seconds or timedelta
    report=True,               # Generate HTML report
)
def my_task(x: int) -> int:
    return x

env2 = flyte.TaskEnvironment(
    name="mig_env",
    resources=flyte.Resources(
        gpu=flyte.GPU("A100", count=1, partition="1g.5gb"),
    ),
)

@env.task(cache=flyte.Cache(
    behavior="auto",           # "auto", "override", "disable"
    version_override="v1.0",   # Explicit version
    serialize=True,            # Force serial execution
    ignored_inputs=("debug",), # Exclude from hash
    salt="my-salt",            # Additional hash salt
))
def advanced_cached_task(x: int, debug: bool = False) -> int:
    return x * 2

if __name__ == "__main__":
    print(flyte.with_runcontext(mode="local").run(my_task, x=5).result)
    print(flyte.with_runcontext(mode="local").run(advanced_cached_task, x=5).result)
"""


def test_000_environment_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The seed writes `Image.from_debian_base(...)` with a literal ellipsis for "arguments
    # elided"; the only change here is dropping it. Its task declares a secret, which a user
    # provides before running it (here: the env var it is read from).
    monkeypatch.setenv("API_KEY", "seed-key")
    assert run_snippet(tmp_path, ENV_CONFIG).split() == ["5", "10"]


MAP_AND_GATHER = """
import asyncio
from functools import partial
import flyte

env = flyte.TaskEnvironment(name="parallel_env", cache="auto")


@env.task
def process_chunk(chunk_id: int, multiplier: int) -> int:
    return chunk_id * multiplier


@env.task
def main(n: int, multiplier: int) -> list[int]:
    chunk_ids = list(range(n))

    # Use partial instead of lambda
    bound_task = partial(process_chunk, multiplier=multiplier)

    results = list(flyte.map(
        bound_task,
        chunk_ids,
        concurrency=10,
    ))
    return results


@env.task
async def aprocess_chunk(chunk_id: int, multiplier: int) -> int:
    # This simulates work that will be limited by the semaphore
    return chunk_id * multiplier


@env.task
async def amain(n: int, multiplier: int) -> list[int]:
    chunk_ids = list(range(n))

    # Initialize the semaphore with your limit (e.g., 10)
    sem = asyncio.Semaphore(10)

    async def throttled_task(cid):
        # The 'async with' block ensures the slot is released
        # even if the task fails
        async with sem:
            return await aprocess_chunk(cid, multiplier)

    # Create the list of throttled coroutines
    tasks = [throttled_task(cid) for cid in chunk_ids]

    # Gather will now run them, but no more than 10 at a time
    results = await asyncio.gather(*tasks)
    return list(results)


@env.task
async def process_item(item: int) -> str:
    if item == 3:
        raise ValueError("three")
    return f"processed_{item}"


@env.task
async def main_with_error_handling(
    items: list[int],
    max_concurrent: int = 5
) -> list[str]:
    \"\"\"Handle errors gracefully with return_exceptions.\"\"\"
    semaphore = asyncio.Semaphore(max_concurrent)

    async def process_with_limit(item: int) -> str:
        async with semaphore:
            return await process_item(item)

    tasks = [process_with_limit(item) for item in items]
    results = await asyncio.gather(*tasks, return_exceptions=True)

    processed = []
    for i, result in enumerate(results):
        if isinstance(result, Exception):
            print(f"Item {items[i]} failed: {result}")
            processed.append(f"Failed: {items[i]}")
        else:
            processed.append(result)
    return processed

if __name__ == "__main__":
    local = flyte.with_runcontext(mode="local")
    print(local.run(main, n=5, multiplier=3).result)
    print(local.run(amain, n=5, multiplier=3).result)
    print(local.run(main_with_error_handling, items=[1, 2, 3, 4]).result)
"""


def test_000_map_semaphore_and_error_handling(tmp_path: Path) -> None:
    out = run_snippet(tmp_path, MAP_AND_GATHER)
    assert out.count("[0, 3, 6, 9, 12]") == 2
    assert "Item 3 failed: three" in out
    assert "['processed_1', 'processed_2', 'Failed: 3', 'processed_4']" in out


DYNAMIC = """
import flyte

env = flyte.TaskEnvironment(name="my_env")

@env.task
def process_tile(tile: int) -> int:
    return tile * 2

@env.task
def process_all_tiles(tiles: list[int]) -> list[int]:
    results = []
    for tile in tiles:
        results.append(process_tile(tile=tile))
    return results

@env.task
def main_workflow(n: int) -> list[int]:
    tiles = list(range(n))
    return process_all_tiles(tiles=tiles)

@env.task
def positive_task(x: int) -> int:
    return x

@env.task
def negative_task(x: int) -> int:
    return -x

@env.task
def main(x: int) -> int:
    if x > 0:
        return positive_task(x)
    else:
        return negative_task(x)

@env.task
def my_task(x: int) -> dict: # would succeed, v2 will pickle I/O where typing isn't explicit
    return {"a": x}

if __name__ == "__main__":
    local = flyte.with_runcontext(mode="local")
    print(local.run(main_workflow, n=4).result)
    print(local.run(main, x=-3).result)
    print(local.run(my_task, x=1).result)
"""


def test_000_dynamic_conditional_and_untyped_dict(tmp_path: Path) -> None:
    assert run_snippet(tmp_path, DYNAMIC).split("\n")[:3] == ["[0, 2, 4, 6]", "3", "{'a': 1}"]


TRIGGERS = """
import flyte
from datetime import datetime, timedelta

def process(x: int) -> int:
    return x

env = flyte.TaskEnvironment(name="my_env")

# Hourly trigger (convenience method)
@env.task(triggers=flyte.Trigger.hourly())
def hourly_task(x: int = 10) -> int:
    return process(x)

# Custom cron trigger
cron_trigger = flyte.Trigger(
    name="custom_cron",
    automation=flyte.Cron("0 * * * *"),  # Every hour
    inputs={"x": 10},
    auto_activate=True,
)

@env.task(triggers=cron_trigger)
def scheduled_task(x: int) -> int:
    return process(x)

# Fixed rate trigger
rate_trigger = flyte.Trigger(
    name="frequent",
    automation=flyte.FixedRate(timedelta(minutes=30)),
    inputs={"x": 5},
    auto_activate=True,
)

@env.task(triggers=rate_trigger)
def frequent_task(x: int) -> int:
    return process(x)

flyte.Trigger.hourly("my_time")  # Custom time parameter name
flyte.Trigger.minutely()         # Every minute
flyte.Cron(
    schedule="0 9 * * 1-5",      # 9 AM weekdays
    timezone="America/New_York", # Optional timezone
)

@env.task(triggers=flyte.Trigger.hourly())
def my_task() -> str:
    return f"Triggered"

print(flyte.with_runcontext(mode="local").run(hourly_task).result)
print(flyte.with_runcontext(mode="local").run(my_task).result)
"""


def test_000_triggers(tmp_path: Path) -> None:
    assert run_snippet(tmp_path, TRIGGERS).split() == ["10", "Triggered"]


CHEAT_SHEET = """
# V2 MINIMAL TEMPLATE
import flyte
import asyncio

# 1. Define image
image = (
    flyte.Image.from_debian_base(python_version=(3, 11))
    .with_pip_packages("pandas", "numpy")
)

# 2. Create TaskEnvironment
env = flyte.TaskEnvironment(
    name="my_env",
    image=image,
    resources=flyte.Resources(cpu="1", memory="2Gi"),
)

# 3. Define tasks
@env.task
async def process(x: int) -> int:
    return x * 2

# 4. Define main entrypoint
@env.task
async def main(items: list[int]) -> list[int]:
    tasks = [process(x) for x in items]
    results = await asyncio.gather(*tasks)
    return list(results)

# 5. Run
if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, items=[1, 2, 3, 4, 5])
    run.wait()
    print(run.result)
"""


def test_000_cheat_sheet(tmp_path: Path) -> None:
    assert "[2, 4, 6, 8, 10]" in run_snippet(tmp_path, CHEAT_SHEET)
    assert "[2, 4, 6, 8, 10]" in flyte_run(tmp_path, CHEAT_SHEET, "main", "--items", "[1,2,3,4,5]")


# -- 003: authoring and execution context -------------------------------------------------------

AUTHORING = """
import os
import time
from dataclasses import dataclass
from typing import List
import flyte

env = flyte.TaskEnvironment(
    name="my_env",
    secrets=[
        flyte.Secret(key="MY_SECRET_KEY", as_env_var="MY_SECRET_ENV_VAR")
    ]
)

# Manual cache version control
@env.task(cache="override", cache_version="v1.2")
def my_task():
    pass

@env.task
def secure_task():
    secret_value = os.getenv("MY_SECRET_ENV_VAR")
    # Use secret_value safely

@dataclass
class InferenceRequest:
    model_name: str
    input_data: List[str]
    batch_size: int = 32

def run_inference(model_name, data):
    return {"model": model_name, "n": len(data)}

@env.task
def batch_inference(requests: List[InferenceRequest]) -> List[dict]:
    results = []
    for request in requests:
        # Process each request
        result = run_inference(request.model_name, request.input_data)
        results.append(result)
    return results

def process_data():
    pass

@env.task(report=True)
def generate_report():
    flyte.report.log("<h1>Processing Started</h1>")

    # Do work
    process_data()

    flyte.report.log("<p>Processing completed successfully</p>")
    flyte.report.flush()  # Send to UI

@env.task(report=True)
def streaming_report():
    tab = flyte.report.get_tab("Progress")

    for i in range(100):
        tab.replace(f"<div>Progress: {i}%</div>")
        flyte.report.flush()
        time.sleep(0.001)

@env.task
async def validate_schema(raw: list[int]) -> list[int]:
    return [x for x in raw if x >= 0]

@env.task
async def check_data_quality(data: list[int]) -> list[int]:
    return data

@env.task
async def train_model(data: list[int]) -> int:
    return sum(data)

@env.task
async def evaluate_model(model: int) -> float:
    return model / 10

raw_data = [1, -2, 3]

@env.task
async def complex_workflow():
    with flyte.group("data-validation"):
        validated_data = await validate_schema(raw_data)
        validated_data = await check_data_quality(validated_data)

    with flyte.group("model-training"):
        model = await train_model(validated_data)
        metrics = await evaluate_model(model)

    return model, metrics

if __name__ == "__main__":
    local = flyte.with_runcontext(mode="local")
    local.run(my_task)
    local.run(secure_task)
    print(local.run(batch_inference, requests=[InferenceRequest("m", ["a", "b"])]).result)
    r = local.run(generate_report)
    print(sorted(p.name for p in (__import__("pathlib").Path(r.url[7:])).rglob("report.html")))
    local.run(streaming_report)
    print(local.run(complex_workflow).result)
"""


def test_003_caching_secrets_dataclasses_reports_groups(tmp_path: Path) -> None:
    # As seed 003 does first: `flyte create secret MY_SECRET_KEY my_secret_value` (the local
    # backend of the data dir keeps it; local runs read it from there).
    flyte_exe = str(Path(sys.executable).parent / "flyte")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "FLYTE_DATA_DIR": str(tmp_path / "data")}
    try:
        made = subprocess.run(
            [flyte_exe, "create", "secret", "MY_SECRET_KEY", "my_secret_value"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
    finally:
        subprocess.run([flyte_exe, "stop", "local"], cwd=tmp_path, capture_output=True, env=env, timeout=60)
    out = run_snippet(tmp_path, AUTHORING)
    assert "[{'model': 'm', 'n': 2}]" in out
    assert "['report.html']" in out
    assert "(4, 0.4)" in out
    reports = list((tmp_path / "data").rglob("report.html"))
    assert any("Progress: 99%" in p.read_text() for p in reports)


ERROR_HANDLING = """
import flyte

env = flyte.TaskEnvironment(name="err_env")

@env.task
async def potentially_failing_task() -> str:
    raise flyte.errors.OOMError(message="out of memory")

@env.task
async def retry_with_more_memory() -> str:
    return "recovered"

@env.task
async def cleanup_task() -> None:
    print("cleanup")

@env.task
async def resilient_workflow():
    try:
        result = await potentially_failing_task()
        return result
    except flyte.errors.OOMError:
        # Retry with more resources
        return await retry_with_more_memory()
    finally:
        # Cleanup tasks always run
        await cleanup_task()

if __name__ == "__main__":
    print(flyte.with_runcontext(mode="local").run(resilient_workflow).result)
"""


def test_003_error_handling(tmp_path: Path) -> None:
    assert run_snippet(tmp_path, ERROR_HANDLING).split() == ["cleanup", "recovered"]


# -- 004: the SDK's README ------------------------------------------------------------------------

README_FIRST = """
import flyte

env = flyte.TaskEnvironment("hello_world")

@env.task
async def process_data(data: list[str]) -> list[str]:
    # Use any Python construct: loops, conditionals, try/except
    results = []
    for item in data:
        if len(item) > 5:
            results.append(await transform_item(item))
    return results

@env.task
async def transform_item(item: str) -> str:
    return f"processed: {item.upper()}"

if __name__ == "__main__":
    flyte.init()
    result = flyte.run(process_data, data=["hello", "world", "flyte"])
    print(result.result)
"""

README_HELLO = """
# hello.py
# /// script
# requires-python = ">=3.10"
# dependencies = ["flyte>=2.0.0b0"]
# ///

import asyncio
import flyte

env = flyte.TaskEnvironment(
    name="hello_world",
    resources=flyte.Resources(memory="250Mi")
)

@env.task
def calculate(x: int) -> int:
    return x * 2 + 5

@env.task
async def main(numbers: list[int]) -> float:
    # Parallel execution across distributed containers
    results = await asyncio.gather(*[
        calculate.aio(num) for num in numbers
    ])
    return sum(results) / len(results)

if __name__ == "__main__":
    flyte.init_from_config("config.yaml")
    run = flyte.run(main, numbers=list(range(10)))
    print(f"Result: {run.result}")
    print(f"View at: {run.url}")
"""


def test_004_readme_examples(tmp_path: Path) -> None:
    assert "[]" in run_snippet(tmp_path, README_FIRST)
    out = run_snippet(
        tmp_path,
        README_HELLO,
        files={"config.yaml": "image:\n  builder: local\ntask:\n  project: p\n  domain: development\n"},
    )
    assert "Result: 14.0" in out and "View at: file://" in out


# -- 003 and 000 data snippets on the embedded backend ------------------------------------------

SEED_003_FILES = """
import flyte
import flyte.io
import pandas as pd

env = flyte.TaskEnvironment(name="seed_003_files")


def process_data(content: str) -> str:
    return content.upper()


def process_dataframe(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(z=df["x"] * 10)

"""

# seed 003, "Files and Directories" and "File Processing Pipeline", as written
SEED_003_FILES += """
@env.task
def process_file(input_file: flyte.io.File) -> flyte.io.File:
    # Read file content
    content = input_file.read()

    # Process content
    result = process_data(content)

    # Create output file
    return flyte.io.File.from_string(result, "output.txt")

@env.task
def upload_local():
    # Upload local file
    return flyte.io.File.from_local("./local_file.txt")

@env.task
def process_dataset(input_dir: flyte.io.Dir) -> flyte.io.File:
    results = []

    # Process files in directory
    for file_path in input_dir.walk():
        if file_path.endswith('.csv'):
            data = pd.read_csv(file_path)
            processed = process_dataframe(data)
            results.append(processed)

    # Combine results
    combined = pd.concat(results)

    # Return as Flyte file
    return flyte.io.File.from_dataframe(combined, "processed_data.parquet")
"""


def _stored_path(stdout: str) -> Path:
    """The local path of the File a run printed (``--output-format json``) as its output."""
    import json

    payload = json.loads(stdout.strip().splitlines()[-1])
    (value,) = payload["outputs"].values()
    assert value["path"].startswith("file://"), value
    return Path(value["path"].removeprefix("file://"))


def test_003_file_snippets_on_the_embedded_backend(tmp_path: Path, backend_endpoint: str) -> None:
    # Every task is its own process; `--copy-style all` ships local_file.txt with the code,
    # and the task's working directory is the code's root, so "./local_file.txt" is found.
    (tmp_path / "local_file.txt").write_text("shipped with the code")
    (tmp_path / "in.txt").write_text("hello file")
    data = tmp_path / "csvs"
    data.mkdir()
    for i in range(3):
        (data / f"part{i}.csv").write_text(f"x,y\n{i},a\n{i + 1},b\n")
    (data / "notes.txt").write_text("not a csv")
    flyte_exe = str(Path(sys.executable).parent / "flyte")
    remote = [flyte_exe, "--endpoint", backend_endpoint, "--insecure", "--output-format", "json", "run", "-f"]
    remote += ["--copy-style", "all"]

    out = run_snippet(
        tmp_path, SEED_003_FILES, argv=[*remote, "snippet.py", "process_file", "--input_file", "in.txt"]
    )
    assert _stored_path(out).read_text() == "HELLO FILE"

    out = run_snippet(tmp_path, SEED_003_FILES, argv=[*remote, "snippet.py", "upload_local"])
    # No return annotation: the File travels pickled, and prints as its repr.
    assert "local_file.txt" in out, out

    out = run_snippet(
        tmp_path, SEED_003_FILES, argv=[*remote, "snippet.py", "process_dataset", "--input_dir", "csvs"]
    )
    import pandas as pd

    df = pd.read_parquet(_stored_path(out))
    assert int(df["z"].sum()) == 90


REMOTE_EXAMPLE = """
import flyte
from flyte import remote

env_1 = flyte.TaskEnvironment(name="env_1")
env_2 = flyte.TaskEnvironment(name="env_2")
env_1.add_dependency(env_2)

@env_2.task
async def remote_task(x: str) -> str:
    return "Remote task processed: " + x

@env_1.task
async def main() -> str:
    remote_task_ref = remote.Task.get("env_2.remote_task", auto_version="latest")
    r = await remote_task_ref(x="Hello")
    return "main called remote and recieved: " + r

if __name__ == "__main__":
    flyte.init_from_config()
    d = flyte.deploy(env_1)
    print(d[0].summary_repr())
    r = flyte.run(main)
    print(r.name)
    print(r.url)
    r.wait()
    print(r.outputs()[0])
"""


def test_001_remote_tasks_deploy_and_call(tmp_path: Path, backend_endpoint: str) -> None:
    """Seed 001's remote example, as written, with a config file naming the embedded backend."""
    (tmp_path / "config.yaml").write_text(f"admin:\n  endpoint: {backend_endpoint}\n  insecure: true\n")
    out = run_snippet(tmp_path, REMOTE_EXAMPLE)
    assert "DeployedTask(name=env_2.remote_task, version=" in out and "Deployment(env=[env_1]" in out
    assert "main called remote and recieved: Remote task processed: Hello" in out
