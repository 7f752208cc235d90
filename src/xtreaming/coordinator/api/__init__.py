"""The coordinator's HTTP API (FastAPI): farms, queues, bases, status; OpenAPI at ``/docs``."""
