"""The binary cache: a cached Kubernetes binary counts only when it was linked with today's flags (version stamps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spiderpool.devcluster import binaries


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPIDERPOOL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SPIDERPOOL_K8S_BIN_DIR", raising=False)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    out = binaries.version_dir() / "bin"
    out.mkdir(parents=True)
    return out


def _executable(path: Path) -> None:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def test_v03_unstamped_cached_binary_is_rebuilt(cache: Path) -> None:
    """V03: a cached kube-apiserver without a build record (an unstamped build of an older checkout) is not used."""
    _executable(cache / "kube-apiserver")
    assert binaries.find_binary("kube-apiserver") is None
    (cache / ".kube-apiserver.build").write_text("-s -w")
    assert binaries.find_binary("kube-apiserver") is None
    (cache / ".kube-apiserver.build").write_text(binaries.ldflags("kube-apiserver"))
    assert binaries.find_binary("kube-apiserver") == cache / "kube-apiserver"


def test_v04_kubernetes_commands_are_stamped_and_etcd_is_not() -> None:
    """V04: every k8s.io/kubernetes command is linked with the release in component-base and client-go; etcd is not."""
    major, minor = binaries.K8S_VERSION.removeprefix("v").split(".")[:2]
    for name in ("kube-apiserver", "kube-controller-manager", *binaries.NODE_BINARIES):
        flags = binaries.ldflags(name)
        assert f"-X k8s.io/component-base/version.gitVersion={binaries.K8S_VERSION}" in flags
        assert f"-X k8s.io/component-base/version.gitMinor={minor}" in flags
        assert f"-X k8s.io/component-base/version.gitMajor={major}" in flags
        assert f"-X k8s.io/client-go/pkg/version.gitVersion={binaries.K8S_VERSION}" in flags
    assert binaries.ldflags("etcd") == "-s -w"
