"""Generate charts/spiderpool/README.md from the ``## @param`` comments of charts/spiderpool/values.yaml.

``python tools/chart_readme.py`` rewrites the README; ``--check`` exits 1 when it is out of date or when values.yaml
is not fully documented (every value needs a ``@param`` of its own or of an enclosing map; every ``@param`` must
name a value that exists).  Comment syntax, as Bitnami's readme-generator: ``## @section Title`` starts a table,
``## @param dotted.key description`` documents a value, and following ``## `` lines continue the description.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parents[1] / "charts" / "spiderpool"
_DIRECTIVE = re.compile(r"^\s*## @(param|section)\s+(.*)$")
_CONTINUATION = re.compile(r"^\s*## (?!@)(.*)$")
_MISSING = object()

_HEADER = """# spiderpool Helm chart

IP address management (IPAM) for Kubernetes underlay networks (macvlan, ipvlan, SR-IOV), wire-compatible with
upstream [Spiderpool](https://github.com/spidernet-io/spiderpool): same CRDs (`spiderpool.spidernet.io/v2beta1`),
annotations, ConfigMap keys and value names where a setting exists upstream.

```shell
helm install spiderpool charts/spiderpool -n kube-system \\
  --set clusterDefaultPool.installIPv4IPPool=true --set ipam.enableIPv6=false \\
  --set clusterDefaultPool.ipv4Subnet=172.18.0.0/16 --set 'clusterDefaultPool.ipv4IPRanges={172.18.40.10-172.18.40.200}'
```

The chart installs the CRDs, the `spiderpool-agent` DaemonSet (host network; its init container copies the
`spiderpool` CNI executable into `global.cniBinHostPath`), the `spiderpool-controller` Deployment with its admission
webhooks and their certificate, least-privilege RBAC per component, the `spiderpool-conf` ConfigMap, and optionally
default pools, ServiceMonitors, the alert rules (`files/alerts.yaml`, see docs/metrics.md) and a Grafana dashboard.

This file is generated from the `## @param` comments of values.yaml by `python tools/chart_readme.py`; edit those.

## Parameters
"""


@dataclass
class Section:
    title: str
    params: list[tuple[str, str]] = field(default_factory=list)


def parse_params(text: str) -> list[Section]:
    """The sections and their ``(key, description)`` params, in file order."""
    sections = [Section("Parameters")]
    current: list[str] | None = None  # the description being continued
    for line in text.splitlines():
        directive = _DIRECTIVE.match(line)
        continuation = _CONTINUATION.match(line)
        if directive and directive.group(1) == "section":
            sections.append(Section(directive.group(2).strip()))
            current = None
        elif directive:
            key, _, description = directive.group(2).strip().partition(" ")
            current = [description.strip()]
            sections[-1].params.append((key, ""))
        elif continuation and current is not None:
            current.append(continuation.group(1).strip())
        else:
            current = None
        if current is not None:
            key = sections[-1].params[-1][0]
            sections[-1].params[-1] = (key, " ".join(part for part in current if part))
    return [section for section in sections if section.params]


def lookup(values: Mapping[str, Any], key: str) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def leaf_keys(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys of every value that is not a non-empty map."""
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            yield from leaf_keys(value, f"{key}.")
        else:
            yield key


def documentation_errors(sections: Sequence[Section], values: Mapping[str, Any]) -> list[str]:
    documented = {key for section in sections for key, _ in section.params}
    errors = [f"@param {key}: no such value in values.yaml" for key in sorted(documented)
              if lookup(values, key) is _MISSING]
    errors += [f"@param {key}: description is empty" for section in sections
               for key, description in section.params if not description]
    for leaf in leaf_keys(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1)):
            errors.append(f"{leaf}: value has no @param (of its own or of an enclosing map)")
    return errors


def _default(value: Any) -> str:
    if value is _MISSING:
        return "(no such value)"
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`".replace("|", "\\|")


def render(sections: Sequence[Section], values: Mapping[str, Any]) -> str:
    parts = [_HEADER]
    for section in sections:
        parts.append(f"\n### {section.title}\n\n| Name | Description | Default |\n| --- | --- | --- |\n")
        for key, description in section.params:
            cell = description.replace("|", "\\|")
            parts.append(f"| `{key}` | {cell} | {_default(lookup(values, key))} |\n")
    return "".join(parts)


def generate(chart_dir: Path = CHART_DIR) -> tuple[str, list[str]]:
    """The README text and the documentation errors of ``chart_dir/values.yaml``."""
    text = (chart_dir / "values.yaml").read_text()
    values = yaml.safe_load(text)
    sections = parse_params(text)
    return render(sections, values), documentation_errors(sections, values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale or values undocumented")
    parser.add_argument("--chart-dir", type=Path, default=CHART_DIR)
    args = parser.parse_args(argv)
    readme, errors = generate(args.chart_dir)
    for error in errors:
        print(f"values.yaml: {error}", file=sys.stderr)
    path = args.chart_dir / "README.md"
    if args.check:
        stale = not path.is_file() or path.read_text() != readme
        if stale:
            print(f"{path} is out of date: run python tools/chart_readme.py", file=sys.stderr)
        return 1 if stale or errors else 0
    path.write_text(readme)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
