#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: apt packages, Python packages, the editable
# build of the compiled allocator, and the pinned Kubernetes binaries (built once from the Go module proxy, then cached
# under ~/.cache/spiderpool keyed by version; KUBEBUILDER_ASSETS / SPIDERPOOL_K8S_BIN_DIR are used first when set).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf '\nsetup failed: %s\n' "$*" >&2; exit 1; }

# prometheus: promtool for the alert-rule tests; containernetworking-plugins: macvlan and host-local for the e2e tests;
# gcc brings libasan/libubsan for `make cni-sanitize`; util-linux: setpriv, the agent without capabilities (H14);
# the real node (tests/cluster, `make cluster-up NODE=real`): containerd + runc (Debian's 1.6), podman + buildah (the
# images), debootstrap (the base image), openssl (kubelet client certificates), iptables (kubelet's checks)
APT_PACKAGES=(cmake ninja-build gcc make iproute2 containernetworking-plugins prometheus util-linux
              containerd runc podman buildah debootstrap openssl iptables)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "apt: installing ${missing[*]}"
  command -v apt-get >/dev/null || fail "apt-get not found; install ${missing[*]} by hand"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" || fail "apt-get install ${missing[*]} failed"
fi

command -v go >/dev/null || fail "Go >= 1.26 is needed to build the Kubernetes binaries (or set KUBEBUILDER_ASSETS)"

step "pip: build requirements"
$PYTHON -m pip install -q "scikit-build-core>=0.10" "cython>=3.0.11" "cython-cmake>=0.2" || fail "pip could not install the build requirements"
step "pip: spiderpool (editable, compiled allocator) with test extras"
$PYTHON -m pip install -q --no-build-isolation -Ceditable.rebuild=true -Cbuild-dir=build/editable -e ".[test,perf]" \
  || fail "pip install -e . failed (see above)"
$PYTHON -c "import spiderpool.core.allocator" || fail "the compiled allocator does not import"

step "Kubernetes binaries (cold build 20-30 min with progress; cached afterwards)"
$PYTHON -m spiderpool.devcluster.binaries || fail "the Kubernetes binaries could not be built (see the error above)"

step "helm (for the chart tests; built once from the Go module proxy, then cached)"
$PYTHON -m spiderpool.devcluster.helm || fail "helm could not be built (see the error above)"

step "real node: kubelet, kube-scheduler, kubectl, Multus, the pause, base and project images (cold ~15 min; cached)"
$PYTHON -m spiderpool.devcluster.realnode prepare || fail "the real node's parts could not be built (see above)"
