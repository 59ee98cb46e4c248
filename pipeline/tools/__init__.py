"""Tools beside the product: the demo, the benchmark and the soak run."""
