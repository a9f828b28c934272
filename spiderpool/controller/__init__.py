"""spiderpool-controller: webhooks, leak collection, subnets and auto pools, pool lifecycle, leader election."""
