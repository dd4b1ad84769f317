"""This SDK as wheels for the images that install it.

An image must run the SDK that defined its tasks, not whatever ``flyte`` a package index offers
(on PyPI that name is another SDK). So the wheel comes from here: the running installation
packed back into a wheel for this machine's platform, and for other platforms, wheels built
for them (``maturin build`` on, or for, that platform) and left in the folder
``$FLYTE_WHEELHOUSE`` names.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import platform
import zipfile
from importlib import metadata
from pathlib import Path

WHEELHOUSE_ENV = "FLYTE_WHEELHOUSE"

# Image platforms and the machine names in wheel platform tags.
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# Files an installer writes into a dist-info folder; they are not part of a wheel.
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


class WheelError(RuntimeError):
    """This SDK cannot be put into an image for a platform it asks for."""


def _wheel_tags(wheel: Path) -> list[str]:
    """The platform tags in a wheel's file name (name-version[-build]-py-abi-platform.whl)."""
    return wheel.name.removesuffix(".whl").split("-")[-1].split(".")


def fits(wheel: Path, image_platform: str) -> bool:
    machine = _MACHINES[image_platform]
    return any(tag == "any" or tag.endswith("_" + machine) for tag in _wheel_tags(wheel))


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def repack_installed(dest: Path) -> Path:
    """The installed SDK as a wheel in ``dest``: its package folder and its metadata, with a
    fresh RECORD (what is on disk is what goes in, edited files included)."""
    dist = metadata.distribution("flyte")
    info = Path(str(dist.locate_file(f"flyte-{dist.version}.dist-info")))
    if not info.is_dir():
        raise WheelError(f"the installed flyte {dist.version} has no dist-info folder at {info}")
    wheel_meta = (info / "WHEEL").read_text()
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise WheelError(f"{info / 'WHEEL'} names no wheel tag")
    package = Path(str(dist.locate_file("flyte")))
    name = f"flyte-{dist.version}-{tags[0]}.whl"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    records: list[list[str]] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        entries: list[tuple[str, Path]] = []
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                entries.append((f"flyte/{path.relative_to(package).as_posix()}", path))
        for path in sorted(info.rglob("*")):
            if path.is_file() and path.name not in _INSTALLER_FILES:
                entries.append((f"{info.name}/{path.relative_to(info).as_posix()}", path))
        for arcname, path in entries:
            data = path.read_bytes()
            info_ = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info_.external_attr = (path.stat().st_mode & 0o777) << 16
            info_.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info_, data)
            records.append(_record_line(arcname, data))
        record_name = f"{info.name}/RECORD"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*records, [record_name, "", ""]])
        wheel.writestr(zipfile.ZipInfo(record_name, date_time=(1980, 1, 1, 0, 0, 0)), out.getvalue())
    return target


def host_platform() -> str | None:
    machine = platform.machine().lower()
    return next(
        (p for p, m in _MACHINES.items() if m == machine or (m == "aarch64" and machine == "arm64")), None
    )


def sdk_wheels(version: str, platforms: tuple[str, ...], dest: Path) -> list[Path]:
    """A wheel of this SDK at ``version`` for each platform, copied or packed into ``dest``."""
    found: list[Path] = []
    host = host_platform()
    # This machine's platform gets the running installation itself: a wheelhouse of the same
    # version number may hold an older build of it.
    if host in platforms and version == metadata.version("flyte"):
        found.append(repack_installed(dest))
    house = os.environ.get(WHEELHOUSE_ENV)
    if house:
        covered = [p for p in platforms if any(fits(w, p) for w in found)]
        found += [
            w
            for w in sorted(Path(house).glob(f"flyte-{version}-*.whl"))
            if not any(fits(w, p) for p in covered)
        ]
    missing = [p for p in platforms if not any(fits(w, p) for w in found)]
    if missing:
        where = (
            f"in {house} (${WHEELHOUSE_ENV})" if house else f"(set {WHEELHOUSE_ENV} to a folder of wheels)"
        )
        raise WheelError(
            f"no flyte {version} wheel for {', '.join(missing)} {where}; build one for that platform "
            "(`maturin build` there, or cross-compiled: `make wheelhouse` in the SDK's source) into it, "
            f"or build the image for {host_platform()} only"
        )
    chosen = [w for w in found if any(fits(w, p) for p in platforms)]
    copies: list[Path] = []
    for wheel in chosen:
        copy = dest / wheel.name
        if copy != wheel:
            dest.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(wheel.read_bytes())
        copies.append(copy)
    return copies
