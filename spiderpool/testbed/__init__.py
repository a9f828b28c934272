"""A testbed of simulated Kubernetes nodes on one machine, with real network namespaces and real CNI plugins.

A simulated node is a network namespace holding master interfaces (veths whose peers sit on a shared L2 "fabric"
bridge), a Node object and a spiderpool agent process; a pod is a Pod object bound to a node plus a network namespace
of its own.  The testbed plays the scheduler (binding) and the kubelet/container runtime (creating the sandbox,
exec'ing the CNI plugin with the CNI environment, reporting status, deleting with grace 0).  Everything it creates
carries one prefix and is removed on close, or by the next testbed if this process died first.
"""
