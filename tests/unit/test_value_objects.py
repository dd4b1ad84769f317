"""Resources, GPU, Secret, Cache and ReusePolicy: construction, validation and accessors."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

import flyte
from flyte._cache import Cache, normalize_cache
from flyte._resources import GPU, Resources, cpu_to_cores, parse_quantity, quantity_to_bytes
from flyte._reusable import ReusePolicy
from flyte._secret import SECRETS_MOUNT_PATH, Secret, normalize_secrets

# ---- Resources ------------------------------------------------------------------------------------


def test_seed_resources_forms() -> None:
    # Every Resources(...) spelled in the seed documents.
    full = Resources(cpu="2", memory="4Gi", gpu="A100:1", disk="10Gi", shm="auto")
    assert full.cpu_cores() == 2.0
    assert full.memory_bytes() == 4 * 2**30
    assert full.disk_bytes() == 10 * 2**30
    assert full.shm == "auto" and full.shm_bytes() is None
    assert full.gpu_spec() == GPU("A100", 1) and full.gpu_count() == 1

    assert Resources(cpu="1", memory="2Gi").memory_bytes() == 2 * 2**30
    assert Resources(cpu="4", memory="32Gi", gpu="A100:2").gpu_count() == 2
    assert Resources(gpu="A100 80G:1").gpu_spec() == GPU("A100 80G", 1)
    assert Resources(gpu=2).gpu_count() == 2 and Resources(gpu=2).gpu_spec() is None
    mig = Resources(gpu=GPU("A100", count=1, partition="1g.5gb"))
    assert mig.gpu_spec() == GPU("A100", 1, "1g.5gb") and mig.gpu_count() == 1
    assert Resources(memory="250Mi").memory_bytes() == 250 * 2**20
    assert Resources(cpu=4, memory="8Gi", gpu=1).cpu_cores() == 4.0
    assert Resources(memory="1Gi", cpu="500m").cpu_cores() == 0.5
    assert Resources(cpu="1").memory_bytes() is None


def test_resources_defaults_are_empty() -> None:
    r = Resources()
    assert r.cpu_cores() is None and r.memory_bytes() is None and r.disk_bytes() is None
    assert r.shm_bytes() is None and r.gpu_count() == 0 and r.gpu_spec() is None
    assert r.cpu_range() is None and r.memory_range() is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250Mi", 250 * 2**20),
        ("4Gi", 4 * 2**30),
        ("1G", 10**9),
        ("1k", 1000),
        ("1Ki", 1024),
        ("1.5Gi", 3 * 2**29),
        ("1e3", 1000),
        ("1E3", 1000),
        ("2E", 2 * 10**18),
        ("500m", 1),  # half a byte rounds up, as Kubernetes does
        ("1Ti", 2**40),
        ("123", 123),
    ],
)
def test_quantity_to_bytes(text: str, expected: int) -> None:
    assert quantity_to_bytes(text) == expected


def test_parse_quantity_is_exact() -> None:
    assert parse_quantity("500m") * 2 == 1
    assert parse_quantity("0.1") * 10 == 1


@pytest.mark.parametrize(
    "bad", ["4GB!", "4GB", "4gb", "4gi", "4 Gi", "Gi", "", "-1Gi", "1.2.3Gi", "4Gib", "1e", "٤Gi"]
)
def test_invalid_memory_quantity_rejected_at_definition(bad: str) -> None:
    with pytest.raises(ValueError, match=r"is not a valid quantity; use e\.g\. '4Gi' or '512Mi'") as e:
        Resources(memory=bad)
    assert f"Resources(memory={bad!r})" in str(e.value)


def test_exact_message_for_bad_memory() -> None:
    with pytest.raises(ValueError) as e:
        Resources(memory="4GB!")
    assert str(e.value) == "Resources(memory='4GB!') is not a valid quantity; use e.g. '4Gi' or '512Mi'"


@pytest.mark.parametrize(
    ("bad", "guess"), [("4GB", "4Gi"), ("512mb", "512Mi"), ("10 gi", "10Gi"), ("2T", None)]
)
def test_unit_typos_get_a_suggestion(bad: str, guess: str | None) -> None:
    if guess is None:
        Resources(memory=bad)  # "2T" is a valid (decimal) quantity
        return
    with pytest.raises(ValueError, match=rf"did you mean '{guess}'\?"):
        Resources(memory=bad)


def test_disk_and_shm_validated() -> None:
    with pytest.raises(ValueError, match=r"Resources\(disk='10GB'\)"):
        Resources(disk="10GB")
    with pytest.raises(ValueError, match=r"Resources\(shm='lots'\) is not valid; use 'auto'"):
        Resources(shm="lots")
    with pytest.raises(TypeError, match=r"Resources\(shm=1\)"):
        Resources(shm=1)  # type: ignore[arg-type]
    assert Resources(shm="2Gi").shm_bytes() == 2 * 2**30
    with pytest.raises(ValueError, match="greater than zero"):
        Resources(disk="0")


def test_memory_must_be_a_string() -> None:
    with pytest.raises(TypeError, match=r"Resources\(memory=4\) must be a string quantity"):
        Resources(memory=4)  # type: ignore[arg-type]


def test_memory_tuple_is_request_and_limit() -> None:
    r = Resources(memory=("1Gi", "2Gi"))
    assert r.memory_range() == (2**30, 2 * 2**30)
    assert r.memory_bytes() == 2 * 2**30
    with pytest.raises(ValueError, match="request must not exceed the limit"):
        Resources(memory=("2Gi", "1Gi"))
    with pytest.raises(ValueError, match="not a valid quantity"):
        Resources(memory=("1Gi", "2GB"))
    with pytest.raises(ValueError, match=r"\(request, limit\) pair"):
        Resources(memory=("1Gi", "2Gi", "3Gi"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cpu", "cores"), [(1, 1.0), (0.5, 0.5), ("2", 2.0), ("500m", 0.5), ("1.5", 1.5), ("250m", 0.25)]
)
def test_cpu_forms(cpu: int | float | str, cores: float) -> None:
    assert Resources(cpu=cpu).cpu_cores() == cores
    assert cpu_to_cores(cpu) == cores


def test_cpu_tuple_is_request_and_limit() -> None:
    r = Resources(cpu=("1", "2"))
    assert r.cpu_range() == (1.0, 2.0) and r.cpu_cores() == 2.0
    assert Resources(cpu=[1, 2]).cpu == (1, 2)  # type: ignore[arg-type]
    assert Resources(cpu=("500m", 1)).cpu_range() == (0.5, 1.0)
    with pytest.raises(ValueError, match="request must not exceed the limit"):
        Resources(cpu=(4, 2))


@pytest.mark.parametrize("bad", ["2Gi", "two", "", "-1", "1.5.5", "500M"])
def test_bad_cpu_strings(bad: str) -> None:
    with pytest.raises(ValueError, match=r"is not a valid CPU amount; use e\.g\. cpu=2"):
        Resources(cpu=bad)


def test_bad_cpu_values() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        Resources(cpu=0)
    with pytest.raises(ValueError, match="greater than zero"):
        Resources(cpu=-1)
    with pytest.raises(ValueError, match="not a valid CPU amount"):
        Resources(cpu=float("nan"))
    with pytest.raises(TypeError, match=r"Resources\(cpu=True\)"):
        Resources(cpu=True)
    with pytest.raises(TypeError):
        Resources(cpu=object())  # type: ignore[arg-type]


def test_gpu_validation() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'A100'\?"):
        Resources(gpu="a100:1")
    with pytest.raises(ValueError, match=r"did you mean 'L40s'\?"):
        Resources(gpu="L40S")
    with pytest.raises(ValueError, match="supported types: 'A2', 'A10'"):
        Resources(gpu="K80:1")
    with pytest.raises(ValueError, match=r"give a count as an int \(gpu=2\)"):
        Resources(gpu="2")
    with pytest.raises(ValueError, match="bad count"):
        Resources(gpu="A100:two")
    with pytest.raises(ValueError, match="at least 1"):
        Resources(gpu="A100:0")
    with pytest.raises(ValueError, match="must not be negative"):
        Resources(gpu=-1)
    with pytest.raises(TypeError, match="flyte.GPU"):
        Resources(gpu=True)
    with pytest.raises(TypeError, match="flyte.GPU"):
        Resources(gpu=("A100", 1))  # type: ignore[arg-type]
    assert Resources(gpu="T4").gpu_spec() == GPU("T4", 1)
    assert Resources(gpu=0).gpu_count() == 0


@pytest.mark.parametrize(
    "device",
    [
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
    ],
)
def test_every_seed_gpu_type_is_accepted(device: str) -> None:
    assert GPU(device).count == 1
    assert Resources(gpu=f"{device}:1").gpu_spec() == GPU(device, 1)


def test_gpu_object() -> None:
    g = GPU("A100", count=1, partition="1g.5gb")
    assert (g.device, g.count, g.partition) == ("A100", 1, "1g.5gb")
    assert str(GPU("H100", 8)) == "H100:8"
    with pytest.raises(ValueError, match=r"quantity=0 must be at least 1"):
        GPU("A100", count=0)
    with pytest.raises(TypeError, match=r"quantity=1.5 must be an int"):
        GPU("A100", count=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid partition; use one of '1g.5gb'"):
        GPU("A100", partition="1g.10gb")
    assert GPU("A100 80G", partition="1g.10gb").partition == "1g.10gb"
    with pytest.raises(ValueError, match="T4 cannot be partitioned"):
        GPU("T4", partition="1g.5gb")
    with pytest.raises(TypeError):
        GPU(100)  # type: ignore[arg-type]


def test_devices_of_every_class_and_their_wire_form() -> None:
    """The reference's device helpers: each names its class; the model and partition reach the
    task template's extended resources as the node labels clusters schedule on."""
    from flyteidl2.core import tasks_pb2

    from flyte._internal._serialize import extended_resources_proto

    assert GPU("A100 80G", 2) == flyte.Device(2, "GPU", "A100_80G")  # the old spelling still works
    assert flyte.TPU("V5E", "2x2") == flyte.Device(1, "TPU", "V5E", "2x2")
    assert flyte.Neuron("Trn1").device_class == "NEURON"
    assert flyte.AMD_GPU("MI300X").device_class == "AMD_GPU"
    assert flyte.HABANA_GAUDI("Gaudi1").device_class == "HABANA_GAUDI"
    with pytest.raises(ValueError, match="not a valid partition; use one of '1x1'"):
        flyte.TPU("V5E", "3x3")
    with pytest.raises(ValueError, match="'Trn9' is not a supported NEURON type"):
        flyte.Neuron("Trn9")
    assert Resources(gpu="V6E:4").get_device() == flyte.Device(4, "TPU", "V6E")
    assert Resources(gpu=2).get_device() == flyte.Device(2, "GPU")
    assert Resources(gpu=0).get_device() is None and Resources().get_device() is None
    assert (
        Resources(shm="auto").get_shared_memory() == "" and Resources(shm="1Gi").get_shared_memory() == "1Gi"
    )

    sliced = flyte.TaskEnvironment(
        "sliced", resources=Resources(gpu=GPU("A100", 1, partition="1g.5gb"), shm="2Gi")
    )
    counted = flyte.TaskEnvironment("counted", resources=Resources(gpu=2))

    @sliced.task
    def on_a_slice() -> None: ...

    @counted.task
    def any_two() -> None: ...

    extended = extended_resources_proto(on_a_slice.resources)
    assert extended.gpu_accelerator.device == "nvidia-tesla-a100"
    assert extended.gpu_accelerator.partition_size == "1g.5gb"
    assert extended.gpu_accelerator.device_class == tasks_pb2.GPUAccelerator.NVIDIA_GPU
    assert extended.shared_memory.size_limit == "2Gi" and extended.shared_memory.mount_path == "/dev/shm"
    assert extended_resources_proto(any_two.resources) is None


def test_resources_are_immutable_and_hashable() -> None:
    r = Resources(cpu=("1", "2"), memory="1Gi", gpu=GPU("T4"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.cpu = 4  # type: ignore[misc]
    assert hash(r) == hash(Resources(cpu=("1", "2"), memory="1Gi", gpu=GPU("T4")))
    assert r == Resources(cpu=["1", "2"], memory="1Gi", gpu=GPU("T4"))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        GPU("T4").count = 2  # type: ignore[misc]


# ---- Secret ---------------------------------------------------------------------------------------


def test_seed_secrets() -> None:
    assert Secret(key="my-api-key").env_var_name() == "MY_API_KEY"
    assert Secret(key="openai-key", as_env_var="OPENAI_API_KEY").env_var_name() == "OPENAI_API_KEY"
    assert Secret(key="access-key", group="aws").env_var_name() == "AWS_ACCESS_KEY"
    mounted = Secret(key="ssl-cert", mount="/etc/flyte/secrets")
    assert mounted.env_var_name() is None and mounted.mount == SECRETS_MOUNT_PATH
    assert Secret(key="mykey", as_env_var="MY_SECRET").env_var_name() == "MY_SECRET"
    assert Secret(key="db-password", as_env_var="DB_PASSWORD").env_var_name() == "DB_PASSWORD"
    assert Secret(key="MY_SECRET_KEY", as_env_var="MY_SECRET_ENV_VAR").env_var_name() == "MY_SECRET_ENV_VAR"
    assert Secret(key="api-key", as_env_var="API_KEY").env_var_name() == "API_KEY"
    assert Secret(key="mykey", group="mygroup").env_var_name() == "MYGROUP_MYKEY"
    full = Secret(key="secret-name", group="optional-group", as_env_var="CUSTOM_ENV_VAR_NAME")
    assert full.env_var_name() == "CUSTOM_ENV_VAR_NAME"


def test_secret_env_var_name_replaces_every_non_alphanumeric() -> None:
    assert Secret(key="a.b/c d".replace(" ", "-")).env_var_name() == "A_B_C_D"
    assert Secret(key="k", group="my.team").env_var_name() == "MY_TEAM_K"


def test_secret_mount_accepts_a_path_object() -> None:
    assert Secret(key="cert", mount=Path("/etc/flyte/secrets/")).mount == SECRETS_MOUNT_PATH  # type: ignore[arg-type]


def test_secret_validation() -> None:
    with pytest.raises(ValueError, match="both mount='/etc/flyte/secrets' and as_env_var='X'; .* pick one"):
        Secret(key="k", mount="/etc/flyte/secrets", as_env_var="X")
    with pytest.raises(
        ValueError, match=r"Secret\(as_env_var='1-bad'\) is not a valid environment variable name.*'_1_BAD'"
    ):
        Secret(key="k", as_env_var="1-bad")
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        Secret(key="k", as_env_var="OK\n")
    with pytest.raises(ValueError, match=r"Secret\(key=''\) must be non-empty"):
        Secret(key="")
    with pytest.raises(ValueError, match="no whitespace"):
        Secret(key="my key")
    with pytest.raises(TypeError, match=r"Secret\(key=None\)"):
        Secret(key=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Secret\(group=' '\)"):
        Secret(key="k", group=" ")
    with pytest.raises(ValueError, match=r"mount='/tmp/x'\) is not supported; .*'/etc/flyte/secrets'"):
        Secret(key="k", mount="/tmp/x")
    with pytest.raises(TypeError, match="as_env_var=3"):
        Secret(key="k", as_env_var=3)  # type: ignore[arg-type]


def test_secret_is_frozen_and_hashable() -> None:
    s = Secret(key="k", group="g")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.key = "x"  # type: ignore[misc]
    assert {s, Secret(key="k", group="g")} == {s}


def test_normalize_secrets() -> None:
    assert normalize_secrets(None) == ()
    assert normalize_secrets("api-key") == (Secret(key="api-key"),)
    assert normalize_secrets(Secret(key="a")) == (Secret(key="a"),)
    assert normalize_secrets(["a", Secret(key="b", as_env_var="B2"), "a"]) == (
        Secret(key="a"),
        Secret(key="b", as_env_var="B2"),
    )
    with pytest.raises(ValueError, match="both land in env var 'API_KEY'"):
        normalize_secrets([Secret(key="api-key"), Secret(key="other", as_env_var="API_KEY")])
    with pytest.raises(TypeError, match="must be a key string or a flyte.Secret"):
        normalize_secrets([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="secrets=3"):
        normalize_secrets(3)  # type: ignore[arg-type]


# ---- Cache ----------------------------------------------------------------------------------------


def test_seed_cache_forms() -> None:
    advanced = Cache(
        behavior="auto",
        version_override="v1.0",
        serialize=True,
        ignored_inputs=("debug",),
        salt="my-salt",
    )
    assert advanced.enabled and advanced.ignored_inputs == ("debug",) and advanced.salt == "my-salt"
    assert Cache(behavior="auto").version_override is None
    assert Cache(behavior="auto", version_override="1.0").version_override == "1.0"
    assert Cache().behavior == "auto"


def test_cache_ignored_inputs_accepts_a_string_and_normalizes() -> None:
    assert Cache(ignored_inputs="debug").ignored_inputs == ("debug",)
    assert Cache(ignored_inputs=("b", "a", "b")) == Cache(ignored_inputs=["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'not valid' is not an input name"):
        Cache(ignored_inputs=("not valid",))
    with pytest.raises(TypeError, match="ignored_inputs=3"):
        Cache(ignored_inputs=3)  # type: ignore[arg-type]


def test_cache_validation() -> None:
    with pytest.raises(
        ValueError, match=r"Cache\(behavior='on'\) is not a cache behavior; use one of 'auto'"
    ):
        Cache(behavior="on")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='cache=True is now cache="auto"'):
        Cache(behavior=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version_override=''"):
        Cache(version_override="")
    with pytest.raises(TypeError, match="serialize='yes'"):
        Cache(serialize="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="salt=1"):
        Cache(salt=1)  # type: ignore[arg-type]
    c = Cache()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.behavior = "disable"  # type: ignore[misc]
    assert hash(c) == hash(Cache())


def test_normalize_cache() -> None:
    assert normalize_cache("auto") == Cache(behavior="auto")
    assert normalize_cache("override") == Cache(behavior="override")
    assert normalize_cache("disable") == Cache(behavior="disable")
    assert not normalize_cache("disable").enabled
    assert normalize_cache(None) == Cache(behavior="disable")
    c = Cache(behavior="auto", serialize=True)
    assert normalize_cache(c) is c


def test_normalize_cache_legacy_version() -> None:
    # @env.task(cache="override", cache_version="v1.2") from seed 003
    assert normalize_cache("override", version="v1.2") == Cache(behavior="override", version_override="v1.2")
    assert normalize_cache("override", "v1.2") == Cache(behavior="override", version_override="v1.2")
    merged = normalize_cache(Cache(serialize=True, salt="s"), version="v2")
    assert merged == Cache(serialize=True, salt="s", version_override="v2")
    assert normalize_cache(Cache(version_override="v2"), version="v2").version_override == "v2"


def test_normalize_cache_rejections() -> None:
    with pytest.raises(ValueError, match=r"cache=True is not a cache behavior.*cache=\"auto\""):
        normalize_cache(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='cache=False is now cache="disable"'):
        normalize_cache(False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache='enabled' is not a cache behavior"):
        normalize_cache("enabled")
    with pytest.raises(ValueError, match="no effect with cache='disable'"):
        normalize_cache("disable", version="v1")
    with pytest.raises(ValueError, match="without cache="):
        normalize_cache(None, version="v1")
    with pytest.raises(ValueError, match="conflicts with Cache"):
        normalize_cache(Cache(version_override="a"), version="b")
    with pytest.raises(ValueError, match="cache_version=''"):
        normalize_cache("auto", version="")


# ---- ReusePolicy ----------------------------------------------------------------------------------


def test_seed_reuse_policies() -> None:
    p = ReusePolicy(replicas=5, idle_ttl=60)
    assert p.idle_ttl == timedelta(seconds=60) and p.min_replicas == p.max_replicas == 5
    assert ReusePolicy(replicas=2, concurrency=1).capacity == 2
    assert ReusePolicy(replicas=2, idle_ttl=300).idle_ttl == timedelta(minutes=5)
    assert ReusePolicy(replicas=3, idle_ttl=300).max_replicas == 3


def test_reuse_policy_forms() -> None:
    p = ReusePolicy()
    assert p.replicas == 2 and p.concurrency == 1 and p.scope == "global"
    assert p.idle_ttl == p.scaledown_ttl == p.get_scaledown_ttl() == timedelta(seconds=30)
    forever = ReusePolicy(idle_ttl=None, scaledown_ttl=None, scope="run")
    assert forever.idle_ttl is None and forever.get_scaledown_ttl() is None and forever.scope == "run"
    ranged = ReusePolicy(replicas=(1, 4), concurrency=3, scaledown_ttl=timedelta(minutes=2))
    assert (ranged.min_replicas, ranged.max_replicas, ranged.capacity) == (1, 4, 12)
    assert ranged.scaledown_ttl == timedelta(minutes=2)
    assert ReusePolicy(replicas=[0, 2]).replicas == (0, 2)  # type: ignore[arg-type]
    assert ReusePolicy(idle_ttl=1.5).idle_ttl == timedelta(seconds=1.5)
    assert ReusePolicy(idle_ttl=60) == ReusePolicy(idle_ttl=timedelta(minutes=1))
    assert hash(ReusePolicy(idle_ttl=60)) == hash(ReusePolicy(idle_ttl=timedelta(minutes=1)))


def test_reuse_policy_validation() -> None:
    with pytest.raises(ValueError, match=r"ReusePolicy\(replicas=0\) must be at least 1"):
        ReusePolicy(replicas=0)
    with pytest.raises(ValueError, match="min must not exceed max"):
        ReusePolicy(replicas=(3, 1))
    with pytest.raises(ValueError, match=r"\(min, max\) pair"):
        ReusePolicy(replicas=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max must be at least 1"):
        ReusePolicy(replicas=(0, 0))
    with pytest.raises(TypeError, match=r"replicas='2'\) must be an int or a \(min, max\) pair"):
        ReusePolicy(replicas="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        ReusePolicy(replicas=(1, 2.5))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ReusePolicy(replicas=True)
    with pytest.raises(ValueError, match=r"concurrency=0\) must be at least 1"):
        ReusePolicy(concurrency=0)
    with pytest.raises(ValueError, match=r"scope='process'\) must be 'global' or 'run'"):
        ReusePolicy(scope="process")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ReusePolicy\(idle_ttl=0\) must be positive"):
        ReusePolicy(idle_ttl=0)
    with pytest.raises(ValueError, match="scaledown_ttl=.* must be positive"):
        ReusePolicy(scaledown_ttl=timedelta(seconds=-1))
    with pytest.raises(TypeError, match=r"idle_ttl='5m'\) must be seconds or a timedelta"):
        ReusePolicy(idle_ttl="5m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ReusePolicy(idle_ttl=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReusePolicy().replicas = 3  # type: ignore[misc]


# ---- through the public namespace -----------------------------------------------------------------


def test_seed_value_objects_via_flyte_namespace() -> None:
    import flyte

    flyte.Resources(cpu="2", memory="4Gi", gpu="A100:1", disk="10Gi", shm="auto")
    flyte.Resources(cpu=4, memory="8Gi", gpu=1)
    assert flyte.Resources(gpu=flyte.GPU("A100", count=1, partition="1g.5gb")).gpu_count() == 1
    assert flyte.Secret(key="access-key", group="aws").env_var_name() == "AWS_ACCESS_KEY"
    assert flyte.Cache(behavior="auto", version_override="1.0").version_override == "1.0"
    assert flyte.ReusePolicy(replicas=2, concurrency=1).max_replicas == 2
    image = flyte.Image.from_debian_base().with_pip_packages("requests")
    assert image.uri == flyte.Image.from_debian_base().with_pip_packages("requests").uri
    assert flyte.Trigger.hourly().automation == flyte.Cron("0 * * * *")
    assert flyte.FixedRate(timedelta(minutes=30)).interval == timedelta(minutes=30)


# ---- RetryStrategy, Backoff, Timeout ----------------------------------------------------------


def test_backoff_delays_are_the_cores() -> None:
    import flyte

    b = flyte.Backoff(base=timedelta(seconds=10), factor=2.0, cap=timedelta(minutes=5))
    assert [b.compute_delay(n).total_seconds() for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    # Far past any float: still the cap.
    assert b.compute_delay(10_000) == timedelta(minutes=5)
    assert flyte.Backoff(base=timedelta(seconds=3)).compute_delay(40) == timedelta(seconds=3)
    with pytest.raises(ValueError, match="retry index"):
        b.compute_delay(-1)


def test_backoff_validation() -> None:
    import flyte

    with pytest.raises(ValueError, match="cap is required"):
        flyte.Backoff(base=timedelta(seconds=1), factor=2.0)
    with pytest.raises(ValueError, match=">= 1.0"):
        flyte.Backoff(base=timedelta(seconds=1), factor=0.5)
    with pytest.raises(ValueError, match="finite"):
        flyte.Backoff(base=timedelta(seconds=1), factor=float("inf"), cap=timedelta(seconds=2))
    with pytest.raises(ValueError, match=">= 0"):
        flyte.Backoff(base=timedelta(seconds=-1))
    with pytest.raises(TypeError, match="timedelta"):
        flyte.Backoff(base=5)  # type: ignore[arg-type]


def test_retry_strategy_and_task_retries() -> None:
    import flyte

    with pytest.raises(ValueError, match="must be an int"):
        flyte.RetryStrategy(count=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        flyte.RetryStrategy(count=-1)
    env = flyte.TaskEnvironment(name="vo_retries")
    backoff = flyte.Backoff(base=timedelta(seconds=1))

    @env.task(retries=3)
    def counted() -> None: ...

    @env.task(retries=flyte.RetryStrategy(count=2, backoff=backoff))
    def paced() -> None: ...

    assert counted.retries == flyte.RetryStrategy(count=3)
    assert paced.retries.count == 2 and paced.retries.backoff == backoff
    assert counted.override(retries=5).retries.count == 5
    with pytest.raises(ValueError, match="retries must be an int"):
        counted.override(retries="3")


def test_timeouts_normalize_like_the_reference() -> None:
    import flyte
    from flyte._timeout import timeout_from_request

    assert timeout_from_request(30) == flyte.Timeout(max_runtime=30)
    assert timeout_from_request(timedelta(minutes=1)) == flyte.Timeout(max_runtime=timedelta(minutes=1))
    full = flyte.Timeout(max_runtime=10, max_queued_time=timedelta(seconds=5), deadline=60)
    assert timeout_from_request(full) is full
    # Zero is "no bound", as unset is.
    assert timeout_from_request(0) is None
    assert timeout_from_request(flyte.Timeout()) is None
    with pytest.raises(ValueError, match="must not be negative"):
        flyte.Timeout(deadline=-1)
    with pytest.raises(ValueError, match="timeout must be"):
        timeout_from_request("10")  # type: ignore[arg-type]


def test_retries_and_timeouts_reach_the_task_metadata_and_the_core() -> None:
    """The TaskMetadata a cluster gets, and the policy local mode asks the core for, agree."""
    import flyte
    from flyte._internal._serialize import CodeRef, task_spec
    from flyte._policy import task_policy

    env = flyte.TaskEnvironment(name="vo_policy")

    @env.task(
        retries=flyte.RetryStrategy(
            count=4, backoff=flyte.Backoff(base=timedelta(seconds=2), factor=3.0, cap=timedelta(seconds=50))
        ),
        timeout=flyte.Timeout(
            max_runtime=timedelta(minutes=2), max_queued_time=7, deadline=timedelta(hours=1)
        ),
    )
    def bounded() -> None: ...

    code = CodeRef(bundle_uri="", root=str(Path(__file__).parent), version="v1")
    metadata = task_spec(bounded, code, project="p", domain="d", org=None).task_template.metadata
    assert metadata.retries.retries == 4
    assert metadata.retries.backoff.base.seconds == 2
    assert metadata.retries.backoff.factor == 3.0
    assert metadata.retries.backoff.cap.seconds == 50
    assert metadata.timeout.seconds == 120
    assert metadata.timeouts.queued_timeout.seconds == 7
    assert metadata.timeouts.deadline.seconds == 3600
    policy = task_policy(bounded)
    assert (policy.retries, policy.max_runtime, policy.deadline) == (4, 120.0, 3600.0)
    # An override is a new policy.
    assert task_policy(bounded.override(retries=1)).retries == 1
