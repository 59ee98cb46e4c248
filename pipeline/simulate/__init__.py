"""The rollout simulator: a six-phase passwordless rollout in the vendors' own log formats."""
