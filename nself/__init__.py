"""nself: from docker-compose.yml to servers and clusters, as Invoke tasks."""

__version__ = "0.1.0"
