"""The project's CustomResourceDefinitions as Python data: the one source of the YAML in ``charts/spiderpool/crds``.

Field names, scopes, short names, printer columns, enums and defaults follow upstream Spiderpool's ``v2beta1`` API so
that upstream manifests and clients work unchanged.  The schemas check shape (types, required fields, enums, integer
bounds); semantic checks (CIDR syntax, ranges inside the subnet, overlaps, immutability) belong to the admission
webhooks, as upstream does it, so that both report the same errors.

This module names and assembles the kinds; their field schemas and printer columns are in ``crd_fields``.
``python -m spiderpool.k8s.crd_schema --write`` regenerates the YAML files; ``--check`` exits 1 when they drift.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spiderpool.k8s.crd_fields import (
    ADDRESS_COLUMNS,
    ENDPOINT_COLUMNS,
    IPPOOL_COLUMNS,
    Schema,
    coordinator_spec,
    coordinator_status,
    endpoint_status_schema,
    ippool_schema,
    multus_config_spec,
    printer_columns,
    reserved_ip_schema,
    root_schema,
    subnet_schema,
)

GROUP = "spiderpool.spidernet.io"
VERSION = "v2beta1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "spiderpool"
DEFAULT_CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "spiderpool" / "crds"
_HEADER = "# Generated from spiderpool/k8s/crd_schema.py by `python -m spiderpool.k8s.crd_schema --write`.\n"


@dataclass(frozen=True)
class CrdKind:
    """How one kind is named and served."""

    kind: str
    plural: str
    short_name: str
    namespaced: bool
    status_subresource: bool

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


IPPOOL = CrdKind("SpiderIPPool", "spiderippools", "sp", namespaced=False, status_subresource=True)
SUBNET = CrdKind("SpiderSubnet", "spidersubnets", "ss", namespaced=False, status_subresource=True)
RESERVED_IP = CrdKind("SpiderReservedIP", "spiderreservedips", "sr", namespaced=False, status_subresource=False)
ENDPOINT = CrdKind("SpiderEndpoint", "spiderendpoints", "se", namespaced=True, status_subresource=False)
MULTUS_CONFIG = CrdKind("SpiderMultusConfig", "spidermultusconfigs", "smc", namespaced=True, status_subresource=False)
COORDINATOR = CrdKind("SpiderCoordinator", "spidercoordinators", "scc", namespaced=False, status_subresource=True)
KINDS: tuple[CrdKind, ...] = (IPPOOL, SUBNET, RESERVED_IP, ENDPOINT, MULTUS_CONFIG, COORDINATOR)


# --- assembly ----------------------------------------------------------------------------------------------------


def _crd(kind: CrdKind, properties: Mapping[str, Schema], columns: Sequence[Schema] = ()) -> Schema:
    version: Schema = {"name": VERSION, "served": True, "storage": True}
    if columns:
        version["additionalPrinterColumns"] = list(columns)
    version["schema"] = {"openAPIV3Schema": root_schema(properties)}
    if kind.status_subresource:
        version["subresources"] = {"status": {}}
    names = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.plural.removesuffix("s"),
        "shortNames": [kind.short_name],
        "categories": [CATEGORY],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [version],
        },
    }


def custom_resource_definitions() -> list[Schema]:
    """Every CRD of the project, in the order of ``KINDS`` (fresh objects: callers may mutate them)."""
    ippool_spec, ippool_status = ippool_schema()
    subnet_spec, subnet_status = subnet_schema()
    return [
        _crd(IPPOOL, {"spec": ippool_spec, "status": ippool_status}, printer_columns(IPPOOL_COLUMNS)),
        _crd(SUBNET, {"spec": subnet_spec, "status": subnet_status}, printer_columns(ADDRESS_COLUMNS)),
        _crd(RESERVED_IP, {"spec": reserved_ip_schema()}, printer_columns(ADDRESS_COLUMNS[:1])),
        _crd(ENDPOINT, {"status": endpoint_status_schema()}, printer_columns(ENDPOINT_COLUMNS)),
        _crd(MULTUS_CONFIG, {"spec": multus_config_spec()}),
        _crd(COORDINATOR, {"spec": coordinator_spec(), "status": coordinator_status()}),
    ]


NAD_GROUP = "k8s.cni.cncf.io"
NAD_VERSION = "v1"
NAD_PLURAL = "network-attachment-definitions"
NAD_CRD_NAME = f"{NAD_PLURAL}.{NAD_GROUP}"


def network_attachment_crd() -> Schema:
    """The NetworkAttachmentDefinition CRD as the Network Plumbing WG publishes it (v1, ``spec.config`` a string)."""
    schema = {
        "type": "object",
        "description": "NetworkAttachmentDefinition is a CRD schema specified by the Network Plumbing Working Group "
                       "to express the intent for attaching pods to one or more logical or physical networks.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {"config": {"type": "string"}}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": NAD_CRD_NAME},
        "spec": {
            "group": NAD_GROUP,
            "scope": "Namespaced",
            "names": {"plural": NAD_PLURAL, "singular": "network-attachment-definition",
                      "kind": "NetworkAttachmentDefinition", "shortNames": ["net-attach-def"]},
            "versions": [{"name": NAD_VERSION, "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }


def definitions_to_install() -> list[Schema]:
    """What the installers put into a cluster by default: the project's CRDs and Multus' NAD CRD (which the chart
    installs when ``multus.multusCNI.install`` is set)."""
    return [*custom_resource_definitions(), network_attachment_crd()]


def render_yaml(crd: Mapping[str, Any]) -> str:
    """The file text of one CRD: deterministic (key order as built), so the drift test can compare bytes."""
    return _HEADER + yaml.safe_dump(dict(crd), sort_keys=False, width=120, default_flow_style=False)


def expected_files() -> dict[str, str]:
    """File name -> content for every CRD."""
    return {kind.file_name: render_yaml(crd) for kind, crd in zip(KINDS, custom_resource_definitions(), strict=True)}


def drifted_files(directory: Path) -> list[str]:
    """Names of CRD files in ``directory`` that are missing or differ from the source."""
    drifted = []
    for name, text in expected_files().items():
        path = directory / name
        if not path.is_file() or path.read_text() != text:
            drifted.append(name)
    return drifted


def write_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the project's CRDs (source: spiderpool/k8s/crd_schema.py).")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write one YAML file per kind into --dir")
    action.add_argument("--check", action="store_true", help="exit 1 if the files in --dir differ from the source")
    parser.add_argument("--dir", type=Path, default=DEFAULT_CRD_DIR)
    args = parser.parse_args(argv)
    if args.write:
        for path in write_files(args.dir):
            print(path)
        return 0
    if args.check:
        drifted = drifted_files(args.dir)
        for name in drifted:
            print(f"{args.dir / name} is stale: run `python -m spiderpool.k8s.crd_schema --write`", file=sys.stderr)
        return 1 if drifted else 0
    sys.stdout.write("---\n".join(expected_files().values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
