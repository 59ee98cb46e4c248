"""Grafana as code: dashboards, provisioning, alert rules, push and check."""
