"""The project's image from ``deploy/Dockerfile``, built from wheels made on the host (no network inside the build).

The host builds the project's wheel (``--no-build-isolation``: the build requirements are those ``make setup``
installed; the CNI executable linked statically, as the Dockerfile does) and fetches its dependencies' wheels from
PyPI (kept per ``pyproject.toml`` hash).  The build context holds only the Dockerfile and those wheels; podman builds
it with ``--network none`` on the debootstrapped base and saves it as an OCI archive named by the inputs' hash.
The host's Python must be the base's (Debian bookworm: 3.11), since the compiled allocator is built for it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from spiderpool.devcluster.binaries import build_lock
from spiderpool.devcluster.realnode.images import (
    BuiltImage,
    _log,
    base_image,
    chart_image,
    images_dir,
    podman,
    project_key,
)
from spiderpool.devcluster.realnode.layout import RealNodeError, run

BASE_PYTHON = (3, 11)


def _pip(*args: str, what: str) -> None:
    run([sys.executable, "-m", "pip", *args], what=what, timeout=1800)


def _dependency_wheels(project: Path, wheel: Path) -> Path:
    key = hashlib.sha256((project / "pyproject.toml").read_bytes()).hexdigest()[:16]
    deps = images_dir() / f"wheels-{key}"
    if not deps.exists():
        _log("fetching the dependencies' wheels from PyPI (on the host)")
        partial = deps.with_name(deps.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _pip("wheel", "-q", "--wheel-dir", str(partial), "--find-links", str(wheel.parent), str(wheel),
             what="fetch the dependencies' wheels")
        (partial / wheel.name).unlink(missing_ok=True)
        os.replace(partial, deps)
    return deps


def _build_context(project: Path, context: Path) -> None:
    wheels = context / "dist" / "wheels"
    wheels.mkdir(parents=True)
    (context / "deploy").mkdir()
    shutil.copy2(project / "deploy" / "Dockerfile", context / "deploy" / "Dockerfile")
    _log("building the project's wheel on the host")
    _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels),
         "-Ccmake.define.CMAKE_EXE_LINKER_FLAGS=-static", "-Ccmake.build-type=Release",
         f"-Cbuild-dir={context / 'build'}", str(project), what="build the project's wheel")
    shutil.rmtree(context / "build", ignore_errors=True)
    built = sorted(wheels.glob("spiderpool-*.whl"))
    if not built:
        raise RealNodeError(f"no spiderpool wheel in {wheels} after `pip wheel`")
    for dep in _dependency_wheels(project, built[0]).glob("*.whl"):
        shutil.copy2(dep, wheels / dep.name)


def project_image(project: Path) -> BuiltImage:
    if sys.version_info[:2] != BASE_PYTHON:
        raise RealNodeError(f"the image's Python is {BASE_PYTHON[0]}.{BASE_PYTHON[1]} (Debian bookworm) and the host "
                            f"builds its wheel: run with a Python {BASE_PYTHON[0]}.{BASE_PYTHON[1]}, not {sys.version}")
    name = chart_image(project)
    base = base_image()
    archive = images_dir() / f"spiderpool-{project_key(project, base)}.oci.tar"
    if archive.exists():
        return BuiltImage(name, archive)
    with build_lock(images_dir() / "project"), tempfile.TemporaryDirectory(dir=images_dir()) as scratch:
        if archive.exists():
            return BuiltImage(name, archive)
        context = Path(scratch) / "context"
        _build_context(project, context)
        _log(f"building {name} from deploy/Dockerfile (--network none)")
        # --no-cache: the wheels reach the install step through a RUN --mount from another stage, which podman's
        # layer cache does not hash; a cached layer kept the previous code (the archive's name already says when a
        # build is needed)
        podman("build", "--no-cache", "--network", "none", "--pull=never", "--build-arg", f"PYTHON_IMAGE={base}",
               "--build-arg", "WHEELS=context", "-f", str(context / "deploy" / "Dockerfile"), "-t", name,
               str(context), what="podman build deploy/Dockerfile")
        partial = archive.with_suffix(".partial")
        podman("save", "--format", "oci-archive", "-o", str(partial), name, what="save the project image")
        os.replace(partial, archive)
        for old in images_dir().glob("spiderpool-*.oci.tar"):
            if old != archive:
                old.unlink()  # one project image at a time: they are 100+ MB each
    return BuiltImage(name, archive)
