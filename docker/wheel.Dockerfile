# This SDK's wheels for Linux on amd64 and arm64, manylinux_2_28 (any glibc from 2.28 on), both
# cross-built on whatever machine runs the build, with nothing but Debian's and PyPI's packages:
# Debian's Rust (rustc-web, with its arm64 standard library through dpkg's multiarch) compiles,
# zig (PyPI's ziglang) links against glibc 2.28's symbols, maturin packs the wheels.
#
#   make wheelhouse                      # runs this file with buildah or docker, into dist/wheelhouse
#   buildah build -f docker/wheel.Dockerfile -o type=local,dest=dist/wheelhouse .
#   docker buildx build -f docker/wheel.Dockerfile -o dist/wheelhouse .
#
# `make image PLATFORMS=linux/amd64,linux/arm64 FLYTE_WHEELHOUSE=dist/wheelhouse` then puts them
# into the multi-arch default image.
FROM docker.io/library/python:3.11-slim-bookworm AS build
# Debian's Rust for building web browsers (rustc-web) is kept recent in bookworm's security suite:
# the lock file's crates need Rust 1.88 or later, which bookworm's own suite does not have.
RUN dpkg --add-architecture arm64 \
    && (grep -rqs bookworm-security /etc/apt/sources.list /etc/apt/sources.list.d \
        || echo "deb http://deb.debian.org/debian-security bookworm-security main" > /etc/apt/sources.list.d/security.list) \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        rustc-web cargo-web libstd-rust-web-dev libstd-rust-web-dev:arm64 gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rustc --version
RUN python -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir "maturin>=1.7,<2.0" ziglang
ENV PATH="/opt/build/bin:$PATH"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY rs_controller/ rs_controller/
COPY rs_backend/ rs_backend/
COPY python/ python/
RUN --mount=type=cache,target=/root/.cargo/registry --mount=type=cache,target=/src/target \
    for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do \
        maturin build --release --locked --zig --compatibility manylinux_2_28 --target "$target" --out /wheelhouse \
        || exit 1; \
    done

FROM scratch
COPY --from=build /wheelhouse/ /
