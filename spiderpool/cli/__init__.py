"""``spiderpoolctl``: read and repair spiderpool state with the user's kubeconfig (see ``docs/cli.md``).

Pure parts (usage figures, the consistency check, the GC preview, rendering) take plain API objects and return data;
:mod:`spiderpool.cli.cluster_state` is the one module here that reads the API server.
"""
