"""Data files shipped with the package: the example rollout plan, ticket rules."""
