"""Workflows written for the reference SDK (flyte 2.12.1), run by it, unmodified, against our
backend. Invoked as ``python workflows.py ENDPOINT CASE``; prints one JSON line."""

import asyncio
import json
import sys

import flyte

env = flyte.TaskEnvironment(name="cases")


@env.task
def hello(who: str) -> str:
    return f"hello {who}"


@env.task(triggers=flyte.Trigger(name="nightly", automation=flyte.Cron("0 3 * * *"), inputs={"who": "night"}))
def greet_later(who: str) -> str:
    return f"good night {who}"


@env.task
def double(x: int) -> int:
    return x * 2


@env.task
def chain(x: int) -> int:
    return double(double(double(x)))


@env.task
async def boom(x: int) -> int:
    raise ValueError(f"bad input {x}")


@env.task
async def catches(x: int) -> str:
    try:
        await boom(x)
    except Exception as e:
        return f"{type(e).__name__}|{getattr(e, 'code', '')}|{e}"
    return "no error"


@env.task
async def fan(n: int) -> int:
    return sum(await asyncio.gather(*[double.aio(i) for i in range(n)]))


@env.task
async def sleeper(s: int) -> int:
    await asyncio.sleep(s)
    return s


@env.task
async def gated(x: int) -> str:
    ok = await (await flyte.new_condition.aio("ok", data_type=bool, timeout=300)).wait.aio()
    n = await flyte.new_condition.aio("n", data_type=int, prompt="How many?")
    return f"{ok} {await n.wait.aio() + x}"


def _condition(run_name: str, name: str) -> "flyte.remote.Condition":
    import time

    for _ in range(600):
        found = flyte.remote.Condition.get(name, run_name=run_name)
        if found is not None:
            return found
        time.sleep(0.2)
    raise SystemExit(f"condition {name} never appeared")


if __name__ == "__main__":
    flyte.init(endpoint=sys.argv[1], insecure=True, project="flytesnacks", domain="development")
    case = sys.argv[2]
    if case == "chain":
        r = flyte.run(chain, x=3)
        r.wait()
        print(json.dumps({"out": r.outputs()[0]}))
    elif case == "fan":
        r = flyte.run(fan, n=50)
        r.wait()
        print(json.dumps({"out": r.outputs()[0]}))
    elif case == "catches":
        r = flyte.run(catches, x=7)
        r.wait()
        print(json.dumps({"out": r.outputs()[0]}))
    elif case == "boom":
        r = flyte.run(boom, x=7)
        r.wait()
        print(json.dumps({"name": r.name, "phase": str(r.phase)}))
    elif case == "fetch":
        # A run started elsewhere (e.g. by `flyte run`), looked up through the remote API.
        run = flyte.remote.Run.get(sys.argv[3])
        run.wait(quiet=True)
        action = flyte.remote.Action.get(run_name=sys.argv[3], name="a0")
        print(json.dumps({"out": run.outputs()[0], "phase": str(run.phase), "action": str(action.phase)}))
    elif case == "condition":
        r = flyte.run(gated, x=1)
        ok = _condition(r.name, "ok")
        waiting = ok.phase
        ok.signal(True)
        _condition(r.name, "n").signal(41)
        r.wait()
        print(
            json.dumps(
                {"name": r.name, "out": r.outputs()[0], "waiting": waiting, "type": str(ok.expected_type)}
            )
        )
    elif case == "sleeper":
        r = flyte.run(sleeper, s=600)
        print(json.dumps({"name": r.name}))
