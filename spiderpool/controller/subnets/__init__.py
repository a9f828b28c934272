"""SpiderSubnet status, application auto-pools and adoption of manual pools (the ``SubnetController``)."""
