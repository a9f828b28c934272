# spiderpool developer entry points. `make test` is the README's test command and what .ci/run calls.
PYTHON ?= python3
STATE_DIR ?= .dev

.PHONY: help setup demo demo-stop test lint unit integration e2e bench cluster-up cluster-down crds cni-sanitize clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install everything the tests need (apt, pip, editable build, Kubernetes binaries)
	bash hack/setup.sh

demo: setup ## set everything up and run the demo: control plane, agents, pods getting addresses through macvlan
	$(PYTHON) -m spiderpool.testbed.demo $(DEMO_ARGS)

demo-stop: ## stop a demo started with DEMO_ARGS=--keep
	$(PYTHON) -m spiderpool.testbed.demo --stop

test: setup ## lint, type-check, import contracts, then every test suite against a real control plane
	bash hack/test.sh

lint: ## ruff, mypy --strict, import-linter
	bash hack/test.sh --lint-only

unit: ## the pure unit tests only (no control plane)
	$(PYTHON) -m pytest tests/unit

integration: ## integration tests against the real local control plane
	$(PYTHON) -m pytest tests/integration

e2e: ## end-to-end tests: real macvlan in network namespaces, real agents (root)
	$(PYTHON) -m pytest tests/e2e

bench: ## run every benchmark under perf/ and record the results in perf/results/
	$(PYTHON) perf/bench_alloc.py --json
	$(PYTHON) perf/bench_store.py --json
	$(PYTHON) perf/bench_cni.py --json
	$(PYTHON) perf/bench_gc.py --json
	$(PYTHON) perf/bench_coordinator.py --json
	$(PYTHON) perf/bench_peers.py --json

ifeq ($(NODE),real)
CLUSTER_CLI = $(PYTHON) -m spiderpool.devcluster.realnode
CLUSTER_STATE = $(STATE_DIR)-real
else
CLUSTER_CLI = $(PYTHON) -m spiderpool.devcluster
CLUSTER_STATE = $(STATE_DIR)
endif

cluster-up: ## start etcd + kube-apiserver in the background (kubeconfig in .dev/kubeconfig); NODE=real: also a real node (containerd, kubelet, Multus) with the chart installed (root)
	$(CLUSTER_CLI) up --state-dir $(CLUSTER_STATE)

cluster-down: ## stop the background cluster and remove its state (NODE=real for the real node)
	$(CLUSTER_CLI) down --state-dir $(CLUSTER_STATE)

crds: ## regenerate charts/spiderpool/crds/ from spiderpool/k8s/crd_schema.py
	$(PYTHON) -m spiderpool.k8s.crd_schema --write

cni-sanitize: ## build the CNI executables (spiderpool, coordinator) with ASan+UBSan into build/cni-sanitize (what tests/unit/test_cni_fuzz.py runs)
	cmake -S cni -B build/cni-sanitize -DSPIDERPOOL_CNI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build/cni-sanitize

clean: ## remove build products
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
