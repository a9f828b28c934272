"""Admission webhooks for SpiderIPPool, SpiderSubnet and SpiderReservedIP (mutating and validating).

The rules themselves are pure (``spiderpool.core.pool_mutation``, ``pool_admission``, ``validation``); this package
reads the peers fresh from the API server and serialises decisions per IP family through ``ledger``.
"""
