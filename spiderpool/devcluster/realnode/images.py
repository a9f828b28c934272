"""Images without a registry, cached by content under ``~/.cache/spiderpool/images``.

- pause: ``build/pause/linux/pause.c`` of the pinned ``k8s.io/kubernetes`` module, ``gcc -static``, ``buildah from
  scratch``; tagged as containerd's sandbox image.
- base: ``debootstrap --variant=minbase bookworm`` with python3, pip and iproute2 from the machine's Debian mirror,
  imported with ``podman import`` (Debian's PEP 668 marker removed: the image's pip installs into the system).
- project: ``deploy/Dockerfile`` on that base with ``WHEELS=context``: the wheel (compiled allocator, static CNI
  executable) and its dependencies' wheels are built on the host, where PyPI is reachable, and the build runs with
  ``--network none``.
Each image is saved as an OCI archive named by a hash of everything it is made from, so a warm run rebuilds nothing;
the node imports the archives into containerd.  podman/buildah always run with ``--runtime runc`` (crun refuses this
machine kind's hybrid cgroups) and ``--cgroup-manager cgroupfs``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from spiderpool.devcluster.binaries import K8S_VERSION, build_lock, cache_root, go_env
from spiderpool.devcluster.realnode.containerd import PAUSE_IMAGE
from spiderpool.devcluster.realnode.layout import RealNodeError, run

_RECIPE = "1"  # bump when a recipe below changes in a way the inputs' hashes do not see
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3", "iproute2", "ca-certificates")
SUITE = "bookworm"
_PROJECT_INPUTS = ("pyproject.toml", "CMakeLists.txt", "README.md", "spiderpool", "cni", "deploy/Dockerfile")


def _log(message: str) -> None:
    print(f"[realnode images] {message}", file=sys.stderr, flush=True)


def images_dir() -> Path:
    return cache_root() / "images"


def _storage_args() -> list[str]:
    root = images_dir()
    return ["--root", str(root / "storage"), "--runroot", str(root / "runroot"), "--storage-driver", "overlay"]


def podman(*args: str, what: str, timeout: float = 1800) -> str:
    return run(["podman", *_storage_args(), "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args], what=what,
               timeout=timeout)


def buildah(*args: str, what: str) -> str:
    return run(["buildah", *_storage_args(), *args], what=what, timeout=600)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class BuiltImage:
    name: str
    archive: Path


def k8s_module_dir(version: str = K8S_VERSION) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        info = json.loads(run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"], cwd=Path(scratch),
                              env=go_env(), what="locate the k8s.io/kubernetes module", timeout=900))
    return Path(info["Dir"])


def pause_image() -> BuiltImage:
    source = k8s_module_dir() / "build" / "pause" / "linux" / "pause.c"
    archive = images_dir() / f"pause-{_digest([_RECIPE.encode(), source.read_bytes()])}.oci.tar"
    if archive.exists():
        return BuiltImage(PAUSE_IMAGE, archive)
    with build_lock(images_dir()), tempfile.TemporaryDirectory() as scratch:
        if archive.exists():
            return BuiltImage(PAUSE_IMAGE, archive)
        _log("building the pause image from pause.c")
        binary = Path(scratch) / "pause"
        run(["gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.10.2-spiderpool", "-o", str(binary),
             str(source)], what="compile pause.c")
        run(["strip", str(binary)], what="strip pause")
        container = buildah("from", "scratch", what="buildah from scratch").strip()
        try:
            buildah("copy", container, str(binary), "/pause", what="copy pause")
            buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container, what="configure")
            buildah("commit", "-q", container, "localhost/spiderpool-pause:local", what="commit pause")
        finally:
            buildah("rm", container, what="remove the pause working container")
        partial = archive.with_suffix(".partial")
        buildah("push", "-q", "localhost/spiderpool-pause:local", f"oci-archive:{partial}:{PAUSE_IMAGE}",
                what="save the pause image")
        os.replace(partial, archive)
    return BuiltImage(PAUSE_IMAGE, archive)


def debian_mirror() -> str:
    explicit = os.environ.get("SPIDERPOOL_DEBIAN_MIRROR")
    if explicit:
        return explicit
    for sources in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not sources.exists():
            continue
        for line in sources.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1:
                return words[1]
            if words[:1] == ["deb"]:
                return next(w for w in words[1:] if not w.startswith("["))
    return "http://deb.debian.org/debian"


def base_image() -> str:
    """``localhost/spiderpool-base:<key>`` in the image storage, made by debootstrap when missing."""
    key = _digest([_RECIPE.encode(), SUITE.encode(), " ".join(BASE_PACKAGES).encode()])
    name = f"localhost/spiderpool-base:{key}"
    with build_lock(images_dir()):
        if _image_exists(name):
            return name
        _log(f"building the Debian {SUITE} base image with debootstrap (1-3 min)")
        with tempfile.TemporaryDirectory(dir=images_dir()) as scratch:
            rootfs = Path(scratch) / "rootfs"
            run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs),
                 debian_mirror()], what="debootstrap the base image", timeout=1800)
            for leftover in (*rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"),
                             *rootfs.glob("var/cache/apt/archives/*.deb"), *rootfs.glob("var/lib/apt/lists/*_*")):
                leftover.unlink()
            tarball = Path(scratch) / "rootfs.tar"
            run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], what="pack the base rootfs")
            podman("import", "--change", 'CMD ["/bin/bash"]', str(tarball), name, what="podman import the base")
    return name


def _image_exists(name: str) -> bool:
    try:
        podman("image", "exists", name, what="look for an image", timeout=60)
    except RealNodeError:
        return False
    return True


def _project_files(project: Path) -> list[Path]:
    if (project / ".git").exists():
        listed = run(["git", "-C", str(project), "ls-files", "-co", "--exclude-standard", "-z", "--",
                      *_PROJECT_INPUTS], what="list the project's files")
        files = [project / name for name in listed.split("\0") if name]
    else:
        files = [p for entry in _PROJECT_INPUTS for p in ([project / entry] if (project / entry).is_file()
                                                          else (project / entry).rglob("*"))]
    skip = {"__pycache__"}
    return sorted(p for p in files if p.is_file() and not skip & set(p.parts) and p.suffix not in (".so", ".pyc"))


def project_key(project: Path, base: str) -> str:
    parts = [_RECIPE.encode(), base.encode(), sys.version.split()[0].encode()]
    for path in _project_files(project):
        parts += [str(path.relative_to(project)).encode(), path.read_bytes()]
    return _digest(parts)


def chart_image(project: Path) -> str:
    """The image the chart's defaults name: ``ghcr.io/spiderpool/spiderpool:<appVersion>``."""
    chart = yaml.safe_load((project / "charts" / "spiderpool" / "Chart.yaml").read_text())
    return f"ghcr.io/spiderpool/spiderpool:{chart['appVersion']}"
