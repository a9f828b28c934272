"""Leak collection: leaked pool records and SpiderEndpoints found and released, safely (see docs/gc.md)."""
