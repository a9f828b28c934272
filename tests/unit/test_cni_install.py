"""install-cni: locating the built executable and the atomic copy into a CNI bin directory."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from spiderpool.agent.install_cni import cni_executable_path, install_cni, main


def test_locator_finds_a_runnable_executable() -> None:
    """CNI01: Locator finds a runnable executable."""
    path = cni_executable_path()
    assert path.name == "spiderpool"
    run = subprocess.run([path], env={"CNI_COMMAND": "VERSION"}, input=b"", capture_output=True, check=True)
    assert b'"supportedVersions"' in run.stdout


def test_install_replaces_atomically_with_mode_0755(tmp_path: Path) -> None:
    """CNI02: Install replaces atomically with mode 0755."""
    source = tmp_path / "built"
    source.write_bytes(b"#!/bin/sh\necho new\n")
    bin_dir = tmp_path / "opt-cni-bin"
    bin_dir.mkdir()
    old = bin_dir / "spiderpool"
    old.write_bytes(b"old binary")
    old.chmod(0o700)
    old_inode = old.stat().st_ino
    with old.open("rb") as running:  # a runtime executing the old binary keeps its file
        installed = install_cni(bin_dir, source=source)
        assert running.read() == b"old binary"
    assert installed == old
    assert installed.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert installed.stat().st_ino != old_inode  # renamed over, not rewritten in place
    assert sorted(path.name for path in bin_dir.iterdir()) == ["spiderpool"]  # no temporary left behind


def test_failed_copy_leaves_no_temporary(tmp_path: Path) -> None:
    """CNI03: Failed copy leaves no temporary."""
    with pytest.raises(FileNotFoundError):
        install_cni(tmp_path, source=tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_cli_installs_the_built_executable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CNI04: CLI installs the built executables: ``spiderpool`` and the chained ``coordinator``."""
    assert main([str(tmp_path)]) == 0
    installed = tmp_path / "spiderpool"
    coordinator = tmp_path / "coordinator"
    assert capsys.readouterr().out.split() == [str(installed), str(coordinator)]
    assert installed.read_bytes() == cni_executable_path().read_bytes()
    assert coordinator.read_bytes() == cni_executable_path("coordinator").read_bytes()
    assert coordinator.read_bytes() != installed.read_bytes()  # posts to /v2/coordinator, not /v2/cni
    assert os.access(installed, os.X_OK)
    assert os.access(coordinator, os.X_OK)


def test_cli_rejects_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CNI05: CLI rejects a missing directory."""
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "nope")])
    assert exited.value.code == 2
    assert f"DIR: {tmp_path / 'nope'} is not a directory" in capsys.readouterr().err
