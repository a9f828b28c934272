"""spiderpool-agent: the per-node daemon serving the CNI executable over a unix socket."""
