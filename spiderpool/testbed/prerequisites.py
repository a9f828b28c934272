"""What the testbed needs from the machine, checked up front so a missing piece is named instead of failing later."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

DEBIAN_CNI_DIR: Final = Path("/usr/lib/cni")
REQUIRED_PLUGINS: Final = ("macvlan", "host-local")
REQUIRED_TOOLS: Final = ("ip", "nsenter", "sysctl")


def missing_prerequisites(*, plugin_dir: Path = DEBIAN_CNI_DIR) -> list[str]:
    """A sentence per missing piece (empty when the testbed can run)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces, veth and macvlan need CAP_NET_ADMIN)")
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            missing.append(f"the {tool!r} command (apt-get install iproute2 util-linux procps)")
    for plugin in REQUIRED_PLUGINS:
        if not (plugin_dir / plugin).is_file():
            missing.append(f"{plugin_dir / plugin} (apt-get install containernetworking-plugins)")
    return missing
