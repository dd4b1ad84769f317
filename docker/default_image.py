"""The default task image: Flyte's Debian base with this SDK (`Image.from_debian_base`).

`make image` builds and pushes it with `flyte build`, so it is the SDK's own definition, built
by the same code as every other image:

    make image                                          # this machine's platform, to $REGISTRY
    make image REGISTRY=registry.example.com/team PLATFORMS=linux/amd64,linux/arm64

A platform other than this machine's needs this SDK's wheel for it in $FLYTE_WHEELHOUSE.
`docker/Dockerfile` is this definition rendered (`make docker/Dockerfile`); `flyte build` lays
out its context, with this SDK's wheels where its COPY step takes them from.
"""

import os

import flyte

platforms = tuple(p for p in os.environ.get("PLATFORMS", "").split(",") if p)

image = flyte.Image.from_debian_base(
    python_version=tuple(int(n) for n in os.environ.get("PYTHON_VERSION", "3.11").split(".")),
    registry=os.environ.get("REGISTRY") or None,
    platform=platforms or None,
)

env = flyte.TaskEnvironment(name="default_image", image=image)
