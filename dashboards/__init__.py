"""Grafana dashboards for mailpulse, generated from Python (``python -m dashboards.build``)."""
