"""End-to-end tests: real control plane, real CNI plugins in network namespaces, real agent processes."""
