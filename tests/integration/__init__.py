"""Integration tests: the real local control plane (etcd + kube-apiserver), no network namespaces."""
