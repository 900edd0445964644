"""Remote hosts over SSH (Fabric): the inventory, verified host keys, a bounded parallel
executor, and the operations built on them."""
