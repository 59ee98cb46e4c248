"""The read side for people without Grafana: the weekly metrics and the weekly review report."""
