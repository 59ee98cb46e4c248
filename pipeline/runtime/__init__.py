"""The streaming runtime: the Faust app and its agents, the worker process, the broker client,
the continuity and lag checks."""
