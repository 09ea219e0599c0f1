"""Operating alsek: Prometheus metrics, a live terminal view and a web
dashboard, all read from a backend (queues, dead letters and the workers
registry), so they work on every backend. Needs the ``ops`` extra."""
