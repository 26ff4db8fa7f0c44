"""Models for the device: encodings that shrink stored bytes, and the accuracy-vs-bytes frontier.

- :mod:`~interlearn.ondevice.quantize` — weight-only int8 / int4 (grouped scales).
- :mod:`~interlearn.ondevice.lowrank` — truncated-SVD factors of the weight matrices.
- :mod:`~interlearn.ondevice.prune` — global magnitude pruning stored as bitmask + int8 values.
- :mod:`~interlearn.ondevice.frontier` — measure every variant, plot the frontier, pick the most
  accurate one within a byte budget, time a suggestion.
"""

from interlearn.ondevice.frontier import ENCODINGS, Variant, choose, encode, latency_ms, measure_variants, plot_frontier
from interlearn.ondevice.lowrank import defactorize, factorize
from interlearn.ondevice.prune import decode_sparse, encode_sparse, prune_magnitude
from interlearn.ondevice.quantize import dequantize_weights, encoded_bytes, quantize_weights

__all__ = [
    "ENCODINGS",
    "Variant",
    "choose",
    "encode",
    "latency_ms",
    "measure_variants",
    "plot_frontier",
    "factorize",
    "defactorize",
    "prune_magnitude",
    "encode_sparse",
    "decode_sparse",
    "quantize_weights",
    "dequantize_weights",
    "encoded_bytes",
]
