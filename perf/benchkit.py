"""What every benchmark of perf/ shares: the machine description stored with its results."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
from pathlib import Path
from typing import Any

from spiderpool.devcluster.binaries import K8S_VERSION


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kubernetes": K8S_VERSION,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in [0, 1]) of a non-empty list: the ceil(fraction * n)-th smallest."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]
