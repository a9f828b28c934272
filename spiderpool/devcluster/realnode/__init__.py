"""A real Kubernetes node for the local control plane: containerd + runc, kubelet, kube-scheduler, Multus, images."""
