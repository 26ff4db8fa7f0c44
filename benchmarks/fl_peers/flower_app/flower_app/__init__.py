"""Benchmark peer: FedAvg as a Flower 1.42 app (see ../pyproject.toml)."""
