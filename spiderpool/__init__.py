"""spiderpool: IP address management for Kubernetes underlay networks (wire-compatible with upstream Spiderpool)."""

__version__ = "0.1.0"
