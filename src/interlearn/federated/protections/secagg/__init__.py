"""Secure aggregation (Bonawitz et al. 2017; SecAgg+, Bell et al. 2020): the server learns only the
sum of the updates."""

from __future__ import annotations

from interlearn.federated.protections.secagg.graph import complete_graph, default_degree, harary_graph
from interlearn.federated.protections.secagg.protocol import SecAggClient, SecAggServer, Transcript, secure_sum
from interlearn.federated.protections.secagg.ring import Ring, expand_mask
from interlearn.federated.protections.secagg.shamir import combine_shares, split_secret
from interlearn.federated.protections.secagg.step import SecureAggregation

__all__ = [
    "Ring",
    "SecAggClient",
    "SecAggServer",
    "SecureAggregation",
    "Transcript",
    "combine_shares",
    "complete_graph",
    "default_degree",
    "expand_mask",
    "harary_graph",
    "secure_sum",
    "split_secret",
]
