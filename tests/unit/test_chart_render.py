"""The Helm chart rendered by the pinned helm (built on demand): lint, default and non-default values, and what the
rendered objects must agree on with the code (webhook paths, ConfigMap keys, ports, alert rules)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from spiderpool.agent.config import DEFAULT_HEALTH_PORT
from spiderpool.cluster_config import parse_conf_yml
from spiderpool.controller.webhook_registration import webhook_configurations
from spiderpool.core.coordinator_spec import coordinator_spec_errors
from spiderpool.core.multus_admission import multus_config_errors
from spiderpool.core.multus_defaults import default_multus_config
from spiderpool.core.multus_render import render_network_attachment
from spiderpool.devcluster.binaries import BuildError
from spiderpool.devcluster.helm import ensure_helm, render_chart, run_helm
from spiderpool.k8s.crd_schema import NAD_CRD_NAME, network_attachment_crd

CHART = Path(__file__).resolve().parents[2] / "charts" / "spiderpool"
NAMESPACE = "spiderpool-system"
NON_DEFAULT = {
    "clusterDefaultPool": {"installIPv4IPPool": True, "installIPv6IPPool": True, "ipv4Subnet": "172.18.0.0/16",
                           "ipv4IPRanges": ["172.18.40.10-172.18.40.200"], "ipv4Gateway": "172.18.0.1",
                           "ipv6Subnet": "fc00:f853:ccd:e793::/64",
                           "ipv6IPRanges": ["fc00:f853:ccd:e793::10-fc00:f853:ccd:e793::ff"]},
    "ipam": {"enableIPv6": False, "spiderSubnet": {"autoPool": {"defaultRedundantIPNumber": 3}}},
    "spiderpoolController": {"replicas": 2, "tls": {"method": "certmanager"},
                             "prometheus": {"serviceMonitor": {"install": True}}},
    "spiderpoolAgent": {"prometheus": {"serviceMonitor": {"install": True}}},
    "prometheusRule": {"install": True},
    "grafanaDashboard": {"install": True},
    "global": {"imageRegistryOverride": "registry.local:5000"},
    "multus": {"multusCNI": {"install": True, "defaultCniCRName": "k8s-pod-network"}},
    "coordinator": {"podCIDRType": "calico", "podMACPrefix": "0a:1b", "hostRuleTable": 600},
}


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except BuildError as error:
        pytest.fail(f"helm could not be found or built: {error}", pytrace=False)


def _render(helm: Path, tmp_path: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    files = []
    if values is not None:
        files.append(tmp_path / "values.yaml")
        files[0].write_text(yaml.safe_dump(values))
    return render_chart(CHART, release="spiderpool", namespace=NAMESPACE, values=files, helm=helm)


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def _kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}


@pytest.fixture(scope="module")
def default_objects(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _render(helm, tmp_path_factory.mktemp("default"))


LOCKED = {"coordinator": {"agentPrivileges": False}}


@pytest.fixture(scope="module")
def locked_objects(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart with the agent locked down: ``coordinator.agentPrivileges: false`` (the default is true, H16)."""
    return _render(helm, tmp_path_factory.mktemp("locked"), LOCKED)


@pytest.fixture(scope="module")
def custom_objects(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _render(helm, tmp_path_factory.mktemp("custom"), NON_DEFAULT)


def test_helm_lint_strict(helm: Path) -> None:
    """CHT01: Helm lint strict."""
    output = run_helm(["lint", "--strict", str(CHART)], helm=helm)
    assert "0 chart(s) failed" in output


def test_default_render_has_the_components_and_no_optional_objects(default_objects: list[dict[str, Any]]) -> None:
    """CHT02: Default render has the components and no optional objects."""
    kinds = _kinds(default_objects)
    assert {"CustomResourceDefinition", "DaemonSet", "Deployment", "ConfigMap", "Secret", "Service", "ClusterRole",
            "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Role"} <= kinds
    assert not kinds & {"SpiderIPPool", "SpiderSubnet", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget",
                        "Certificate"}
    assert len([o for o in default_objects if o["kind"] == "CustomResourceDefinition"]) == 6


def test_agent_daemonset_installs_the_cni_and_probes_the_health_port(default_objects: list[dict[str, Any]]) -> None:
    """CHT03: Agent daemonset installs the CNI and probes the health port."""
    pod = _one(default_objects, "DaemonSet", "spiderpool-agent")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    init = pod["initContainers"][0]
    assert init["command"] == ["spiderpool-agent", "install-cni", "/host/opt/cni/bin"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cni-bin-path"]["hostPath"]["path"] == "/opt/cni/bin"
    assert volumes["ipam-socket-dir"]["hostPath"]["path"] == "/var/run/spidernet"
    agent = pod["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert agent[probe]["httpGet"]["port"] == DEFAULT_HEALTH_PORT == 5710
    assert {"name": "SPIDERPOOL_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in agent["env"]


def test_configmap_is_read_by_the_code_as_the_values_say(custom_objects: list[dict[str, Any]]) -> None:
    """CHT04: Configmap is read by the code as the values say."""
    data = _one(custom_objects, "ConfigMap", "spiderpool-conf")["data"]
    settings = parse_conf_yml(data["conf.yml"])
    assert settings["enable_ipv6"] is False
    assert settings["default_flexible_ip_number"] == 3
    assert settings["ipam_unix_socket_path"] == "/var/run/spidernet/spiderpool.sock"


def _webhooks_by_name(configuration: dict[str, Any]) -> Iterator[tuple[str, str, list[str], list[str]]]:
    for hook in configuration["webhooks"]:
        client = hook["clientConfig"]
        path = client["service"]["path"] if "service" in client else client["url"].split("/", 3)[-1]
        yield hook["name"], "/" + path.lstrip("/"), hook["rules"][0]["operations"], hook["rules"][0]["resources"]


@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
def test_webhooks_match_what_the_controller_serves(default_objects: list[dict[str, Any]], kind: str) -> None:
    """CHT05: Webhooks match what the controller serves."""
    rendered = _one(default_objects, kind)
    reference = next(c for c in webhook_configurations(name="x", base_url="https://h:1", ca_pem=b"ca")
                     if c["kind"] == kind)
    assert sorted(_webhooks_by_name(rendered)) == sorted(_webhooks_by_name(reference))
    assert rendered["webhooks"][0]["clientConfig"]["service"] == {
        "name": "spiderpool-controller", "namespace": NAMESPACE,
        "path": rendered["webhooks"][0]["clientConfig"]["service"]["path"], "port": 443}


def test_generated_ca_signs_the_served_certificate(default_objects: list[dict[str, Any]]) -> None:
    """CHT06: Generated CA signs the served certificate."""
    secret = _one(default_objects, "Secret", "spiderpool-controller-server-certs")
    bundle = _one(default_objects, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    assert bundle == secret["data"]["ca.crt"]
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
    mounted = _one(default_objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "spiderpool-controller-server-certs"}} in mounted


def test_controller_leaves_webhook_registration_to_the_chart(default_objects: list[dict[str, Any]]) -> None:
    """CHT07: Controller leaves webhook registration to the chart."""
    args = _one(default_objects, "Deployment", "spiderpool-controller")["spec"]["template"]["spec"]["containers"][0]
    assert "--register-webhooks=none" in args["args"]


def test_non_default_render_adds_the_optional_objects(custom_objects: list[dict[str, Any]]) -> None:
    """CHT08: Non default render adds the optional objects."""
    kinds = _kinds(custom_objects)
    assert {"SpiderIPPool", "SpiderSubnet", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget",
            "Certificate", "Issuer"} <= kinds
    assert "Secret" not in kinds  # cert-manager writes it
    pool = _one(custom_objects, "SpiderIPPool", "default-v4-ippool")["spec"]
    assert pool == {"ipVersion": 4, "subnet": "172.18.0.0/16", "ips": ["172.18.40.10-172.18.40.200"],
                    "gateway": "172.18.0.1", "default": True}
    image = _one(custom_objects, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.local:5000/spiderpool/spiderpool:0.1.0"
    annotations = _one(custom_objects, "ValidatingWebhookConfiguration")["metadata"]["annotations"]
    assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/spiderpool-controller-server-certs"


def test_prometheus_rule_embeds_the_tested_rules_file(custom_objects: list[dict[str, Any]]) -> None:
    """CHT09: Prometheus rule embeds the tested rules file."""
    rule = _one(custom_objects, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())


def test_invalid_tls_method_names_the_value(helm: Path, tmp_path: Path) -> None:
    """CHT10: Invalid tls method names the value."""
    with pytest.raises(BuildError, match=r'spiderpoolController.tls.method: .*got "selfmade"'):
        _render(helm, tmp_path, {"spiderpoolController": {"tls": {"method": "selfmade"}}})


def test_default_pool_without_ranges_names_the_value(helm: Path, tmp_path: Path) -> None:
    """CHT11: Default pool without ranges names the value."""
    with pytest.raises(BuildError, match=r"clusterDefaultPool.ipv4IPRanges: at least one"):
        _render(helm, tmp_path, {"clusterDefaultPool": {"installIPv4IPPool": True, "ipv4Subnet": "10.0.0.0/8"}})


def test_agent_and_controller_get_the_same_statefulset_hold(helm: Path, tmp_path: Path) -> None:
    """CHT12: The agent keeps a held ordinal's address on DEL, the controller releases it after the hold: they must
    agree."""
    objects = _render(helm, tmp_path, {"ipam": {"gc": {"statefulSetIPHoldDuration": 90}}})
    holds = {}
    for kind in ("DaemonSet", "Deployment"):
        [container] = _one(objects, kind)["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        holds[kind] = env["SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION"]
    assert holds == {"DaemonSet": "90", "Deployment": "90"}


def test_agents_reach_the_record_combiner_through_the_controller_service(
        default_objects: list[dict[str, Any]], helm: Path, tmp_path: Path) -> None:
    """CHT13: By default the agents send pool records to the controller's Service on 443 (a port it serves, with a
    certificate whose DNS names include that Service name), trusting only the CA of the webhook Secret (its key is
    not mounted); the controller may ask TokenReviews and SubjectAccessReviews; ``recordCombiner: false`` removes
    the agents' side."""
    agent = _one(default_objects, "DaemonSet")["spec"]["template"]["spec"]
    [container] = agent["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SPIDERPOOL_COMBINER_URL"] == "https://spiderpool-controller.spiderpool-system.svc:443"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "combiner-ca")
    assert env["SPIDERPOOL_COMBINER_CA_FILE"] == f"{mount['mountPath']}/ca.crt"
    volume = next(v for v in agent["volumes"] if v["name"] == "combiner-ca")["secret"]
    secret = _one(default_objects, "Secret", volume["secretName"])
    assert volume["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    served = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert "spiderpool-controller.spiderpool-system.svc" in names
    ports = _one(default_objects, "Service", "spiderpool-controller")["spec"]["ports"]
    assert {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"} in ports
    rules = _one(default_objects, "ClusterRole", "spiderpool-controller")["rules"]
    assert {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]} in rules
    assert {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]} in rules
    off = _one(_render(helm, tmp_path, {"spiderpoolAgent": {"recordCombiner": False}}), "DaemonSet")
    [plain] = off["spec"]["template"]["spec"]["containers"]
    assert not {item["name"] for item in plain["env"]} & {"SPIDERPOOL_COMBINER_URL", "SPIDERPOOL_COMBINER_CA_FILE"}


# ---------------------------------------------------------------------------------------------- security contexts
DOCKERFILE = CHART.parents[1] / "deploy" / "Dockerfile"
LOCKED_DOWN = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "privileged": False,
               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kind: _one(objects, kind)["spec"]["template"]["spec"] for kind in ("DaemonSet", "Deployment")}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _effective(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """What the kubelet applies: the pod's securityContext, each field overridden by the container's."""
    return {**pod.get("securityContext", {}), **container.get("securityContext", {})}


def _image_user() -> str:
    users = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER ")]
    assert users, f"{DOCKERFILE} sets no USER"
    return users[-1]  # the last one is the runtime stage's


def test_h01_every_container_is_locked_down(default_objects: list[dict[str, Any]],
                                            locked_objects: list[dict[str, Any]]) -> None:
    """H01: with ``coordinator.agentPrivileges: false`` every container of the agent and the controller (init
    container included): no privilege escalation, no capability at all, not privileged, RuntimeDefault seccomp,
    read-only root filesystem with an emptyDir at /tmp; by default the same holds for every container but the agent
    container (H16)."""
    for objects, privileged in ((locked_objects, set()), (default_objects, {"spiderpool-agent"})):
        for kind, pod in _pods(objects).items():
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            for container in _containers(pod):
                [tmp] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
                assert "emptyDir" in volumes[tmp["name"]], (kind, container["name"])
                if container["name"] in privileged:
                    continue
                effective = _effective(pod, container)
                assert {key: effective.get(key) for key in LOCKED_DOWN} == LOCKED_DOWN, (kind, container["name"])


def test_h02_controller_runs_as_the_images_unprivileged_user(default_objects: list[dict[str, Any]]) -> None:
    """H02: the controller runs non-root, as the UID and GID the image's USER names (deploy/Dockerfile), and its
    files (TLS Secret, token) are readable by that group."""
    pod = _pods(default_objects)["Deployment"]
    [container] = pod["containers"]
    effective = _effective(pod, container)
    assert effective["runAsNonRoot"] is True
    assert f"{effective['runAsUser']}:{effective['runAsGroup']}" == _image_user()
    assert effective["runAsUser"] != 0
    assert pod["securityContext"]["fsGroup"] == effective["runAsGroup"]


def test_h03_agent_is_root_without_capabilities_and_only_its_host_paths(locked_objects: list[dict[str, Any]]) -> None:
    """H03: with ``coordinator.agentPrivileges: false`` the agent (and install-cni) run as root for the root-owned
    host directories they write, with no capability added back; the only hostPaths are the CNI bin directory (init
    container only) and the socket directory (agent only): no /var/run/netns, no host root."""
    pod = _pods(locked_objects)["DaemonSet"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths == {"cni-bin-path": "/opt/cni/bin", "ipam-socket-dir": "/var/run/spidernet"}
    mounted = {c["name"]: {m["name"] for m in c["volumeMounts"]} & set(host_paths) for c in _containers(pod)}
    assert mounted == {"install-cni": {"cni-bin-path"}, "spiderpool-agent": {"ipam-socket-dir"}}
    for container in _containers(pod):
        effective = _effective(pod, container)
        assert (effective["runAsUser"], effective["runAsNonRoot"]) == (0, False), container["name"]
        assert "add" not in effective["capabilities"], container["name"]
    assert "hostPID" not in pod
    assert "hostIPC" not in pod


def test_h13_security_context_values_are_honoured(helm: Path, tmp_path: Path) -> None:
    """H13: the securityContext values reach the containers: another UID for the controller, a capability added back
    for the agent (a site that needs it), each other field kept from the defaults."""
    objects = _render(helm, tmp_path, {
        "spiderpoolController": {"securityContext": {"runAsUser": 10001}, "podSecurityContext": {"fsGroup": 10001}},
        "spiderpoolAgent": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, **LOCKED,
    })
    pods = _pods(objects)
    controller = _effective(pods["Deployment"], pods["Deployment"]["containers"][0])
    assert (controller["runAsUser"], controller["readOnlyRootFilesystem"]) == (10001, True)
    assert pods["Deployment"]["securityContext"]["fsGroup"] == 10001
    for container in _containers(pods["DaemonSet"]):
        assert container["securityContext"]["capabilities"] == {"add": ["NET_ADMIN"], "drop": ["ALL"]}


def test_h15_detection_gives_the_agent_only_what_it_needs(helm: Path, tmp_path: Path) -> None:
    """H15: with ipam.enableGatewayDetection (or enableIPConflictDetection) and ``coordinator.agentPrivileges: false``
    the agent container, and only it, gets CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN back (not privileged) and
    the host's /var/run/netns (HostToContainer, for the runtime's CNI_NETNS paths); conf.yml carries both keys;
    everything else stays as H01/H03 say."""
    objects = _render(helm, tmp_path, {"ipam": {"enableGatewayDetection": True}, **LOCKED})
    pod = _pods(objects)["DaemonSet"]
    agent, = (c for c in pod["containers"] if c["name"] == "spiderpool-agent")
    assert agent["securityContext"]["capabilities"] == {"add": ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"], "drop": ["ALL"]}
    assert agent["securityContext"]["privileged"] is False
    install, = pod["initContainers"]
    assert "add" not in install["securityContext"]["capabilities"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths["host-netns"] == "/var/run/netns"
    mount, = (m for m in agent["volumeMounts"] if m["name"] == "host-netns")
    assert (mount["mountPath"], mount["mountPropagation"]) == ("/var/run/netns", "HostToContainer")
    settings = parse_conf_yml(_one(objects, "ConfigMap", "spiderpool-conf")["data"]["conf.yml"])
    assert (settings["enable_gateway_detection"], settings["enable_ip_conflict_detection"]) == (True, False)


def test_h16_coordinator_privileges_by_default(default_objects: list[dict[str, Any]]) -> None:
    """H16: by default (``coordinator.agentPrivileges: true``, as upstream's agent is always privileged and
    SpiderMultusConfig chains the coordinator by default) the agent container, and only it, gets what the
    coordinator's work needs: CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, the host's /var/run/netns and
    ``privileged``; ``false`` gives the locked-down agent of H01/H03; the default SpiderCoordinator's spec does not
    carry the chart-only key."""
    pod = _pods(default_objects)["DaemonSet"]
    agent, = (c for c in pod["containers"] if c["name"] == "spiderpool-agent")
    assert agent["securityContext"]["capabilities"] == {"add": ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"], "drop": ["ALL"]}
    # the pod's sysctls: containerd mounts /proc/sys read-only in a container that is not privileged (RN13)
    context = agent["securityContext"]
    assert (context["privileged"], context["allowPrivilegeEscalation"]) == (True, True)
    install, = pod["initContainers"]
    assert "add" not in install["securityContext"]["capabilities"]
    assert install["securityContext"]["privileged"] is False
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths["host-netns"] == "/var/run/netns"
    assert "agentPrivileges" not in _controller_env(default_objects)["SPIDERPOOL_DEFAULT_COORDINATOR_SPEC"]


def _controller_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = _one(objects, "Deployment", "spiderpool-controller")["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def test_scc05_default_coordinator_from_values(default_objects: list[dict[str, Any]],
                                               custom_objects: list[dict[str, Any]]) -> None:
    """SCC05: the controller is told to create the default SpiderCoordinator from coordinator.* (upstream's
    defaults), a spec its webhook admits; the chart itself holds no SpiderCoordinator (its webhook would refuse it
    while no controller is ready)."""
    assert not [o for o in default_objects if o["kind"] == "SpiderCoordinator"]
    env = _controller_env(default_objects)
    assert env["SPIDERPOOL_DEFAULT_COORDINATOR_NAME"] == "default"
    spec = json.loads(env["SPIDERPOOL_DEFAULT_COORDINATOR_SPEC"])
    assert spec == {"mode": "auto", "podCIDRType": "auto", "tunePodRoutes": True, "hijackCIDR": ["169.254.0.0/16"],
                    "policyRoutes": [], "podMACPrefix": "", "podDefaultRouteNIC": "", "hostRuleTable": 500,
                    "podRPFilter": 0, "txQueueLen": 0, "vethLinkAddress": "", "vethMTU": 1500}
    assert coordinator_spec_errors(spec, require_optional=True) == []
    custom = json.loads(_controller_env(custom_objects)["SPIDERPOOL_DEFAULT_COORDINATOR_SPEC"])
    assert (custom["podCIDRType"], custom["podMACPrefix"], custom["hostRuleTable"]) == ("calico", "0a:1b", 600)


def test_smc06_multus_install_adds_the_nad_crd(default_objects: list[dict[str, Any]],
                                               custom_objects: list[dict[str, Any]]) -> None:
    """SMC06: multus.multusCNI.install renders the NetworkAttachmentDefinition CRD the code installs (kept on
    uninstall); without it, none."""
    assert not [o for o in default_objects if o["metadata"]["name"] == NAD_CRD_NAME]
    crd = _one(custom_objects, "CustomResourceDefinition", NAD_CRD_NAME)
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["spec"] == network_attachment_crd()["spec"]


def test_smc07_default_multus_config_of_the_cluster_network(default_objects: list[dict[str, Any]],
                                                            custom_objects: list[dict[str, Any]]) -> None:
    """SMC07: with multus.multusCNI.defaultCniCRName the controller is given the cluster network's
    SpiderMultusConfig to create, as upstream's spiderpool-init creates it (custom, no coordinator; Calico's legacy
    name kept as the NAD's name); its NAD has no config; without the value, none; never a chart object."""
    assert not [o for o in default_objects + custom_objects if o["kind"] == "SpiderMultusConfig"]
    assert "SPIDERPOOL_DEFAULT_MULTUS_CONFIG" not in _controller_env(default_objects)
    smc = json.loads(_controller_env(custom_objects)["SPIDERPOOL_DEFAULT_MULTUS_CONFIG"])
    assert smc["metadata"]["name"] == "calico"
    assert smc["metadata"]["namespace"] == NAMESPACE
    assert smc["metadata"]["annotations"] == {"multus.spidernet.io/cr-name": "k8s-pod-network"}
    assert smc["spec"] == {"cniType": "custom", "enableCoordinator": False}
    nad = render_network_attachment(default_multus_config(smc))
    assert (nad.name, nad.config) == ("k8s-pod-network", "")
    assert multus_config_errors(default_multus_config(smc)) == []
