"""Golden tests: the NetworkAttachmentDefinition rendered from a SpiderMultusConfig equals what upstream's code
produces for the same object (tests/fixtures/multus/README.md says how the expected outputs were generated)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from structural_defaults import apply_defaults, crd_schema

from spiderpool.core.multus_defaults import CNI_TYPES, default_multus_config
from spiderpool.core.multus_render import MultusRenderError, render_network_attachment

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "multus" / "upstream_goldens.json"
CASES: list[dict[str, Any]] = json.loads(GOLDENS.read_text())
SCHEMA = crd_schema("SpiderMultusConfig")


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores: schema defaults, our mutating webhook, schema defaults again on read."""
    result: dict[str, Any] = apply_defaults(default_multus_config(apply_defaults(obj, SCHEMA)), SCHEMA)
    return result


def rendered(obj: dict[str, Any]) -> dict[str, Any]:
    nad = render_network_attachment(obj)
    return {"name": nad.name, "namespace": nad.namespace, "annotations": dict(nad.annotations),
            "config": orjson.loads(nad.config) if nad.config else None}


def expected(case: dict[str, Any]) -> dict[str, Any]:
    return {key: case["nad"][key] for key in ("name", "namespace", "annotations", "config")}


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_smc01_rendered_nad_equals_upstreams(case: dict[str, Any]) -> None:
    """SMC01: our defaulting + rendering of each SpiderMultusConfig gives upstream's NAD (parsed JSON), or fails
    where upstream's controller fails."""
    if "error" in case:
        with pytest.raises(MultusRenderError):
            render_network_attachment(stored(case["input"]))
        return
    assert rendered(stored(case["input"])) == expected(case)


@pytest.mark.parametrize("case", [c for c in CASES if "nad" in c], ids=[c["case"] for c in CASES if "nad" in c])
def test_smc02_renderer_alone_on_upstreams_stored_object(case: dict[str, Any]) -> None:
    """SMC02: the renderer alone, given the object as upstream's API server and webhook stored it, gives upstream's
    NAD; and its config text is byte-identical to upstream's."""
    assert rendered(case["stored"]) == expected(case)
    text = render_network_attachment(case["stored"]).config
    assert text == case["nad"].get("configText", "")


def test_smc03_the_goldens_cover_every_cni_type_and_upstreams_doc_examples() -> None:
    """SMC03: the table holds every cniType, and upstream's documentation examples."""
    types = {stored(c["input"])["spec"]["cniType"] for c in CASES}
    assert types == set(CNI_TYPES)
    from_docs = [c for c in CASES if c["source"].startswith("docs/")]
    assert len(from_docs) >= 40
    assert any(c["source"] == "docs/usage/spider-multus-config.md" for c in from_docs)


def test_smc04_annotations_name_the_nad_and_the_config() -> None:
    """SMC04: cr-name names the NAD, cniconfig-name the CNI network, cni-version the version (default 0.3.1);
    sriov sets k8s.v1.cni.cncf.io/resourceName; every annotation of the SpiderMultusConfig is carried over."""
    obj = stored({"metadata": {"name": "a", "namespace": "ns", "annotations": {
        "multus.spidernet.io/cr-name": "b", "cni.spidernet.io/cniconfig-name": "c", "x": "y"}},
        "spec": {"cniType": "sriov", "sriov": {"resourceName": "vendor/vf"}}})
    nad = render_network_attachment(obj)
    config = orjson.loads(nad.config)
    assert (nad.name, config["name"], config["cniVersion"]) == ("b", "c", "0.3.1")
    assert nad.annotations["k8s.v1.cni.cncf.io/resourceName"] == "vendor/vf"
    assert nad.annotations["x"] == "y"


def test_smc05_this_pages_examples_render_as_shown() -> None:
    """SMC05: each SpiderMultusConfig of docs/multus.md renders to the config shown in the ```json block after it."""
    import re

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "multus.md").read_text()
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", text, re.S)
    pairs = []
    for (kind, body), (next_kind, next_body) in itertools.pairwise(blocks):
        objects = [o for o in yaml.safe_load_all(body) if isinstance(o, dict)] if kind == "yaml" else []
        for obj in objects:
            if obj.get("kind") == "SpiderMultusConfig":
                assert next_kind == "json", f"{obj['metadata']['name']}: no ```json block after it"
                pairs.append((obj, orjson.loads(next_body)))
    assert len(pairs) >= 2
    for obj, shown in pairs:
        assert orjson.loads(render_network_attachment(stored(obj)).config) == shown, obj["metadata"]["name"]
