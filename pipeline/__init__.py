"""Passwordless rollout metrics pipeline."""
