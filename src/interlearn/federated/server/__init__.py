"""The server side of a federated run: the round loop (:mod:`.simulation`; ``simulate`` and
``SimulationConfig`` are exported by :mod:`interlearn.federated`), cohort sampling, the byte counts
of what travels, and evaluation of the global parameters.

This package's ``__init__`` imports only the leaf modules (the engines import them too); the loop,
which imports the engines, is imported from its own module."""

from interlearn.federated.server.comm import download_bytes, params_bytes, tensor_bytes, upload_bytes
from interlearn.federated.server.evaluate import (
    client_accuracies,
    evaluate_params,
    params_accuracy,
    summarize_accuracies,
)
from interlearn.federated.server.sampling import CohortSampling, cohort_size, poisson_cohort, sample_cohort

__all__ = [
    "CohortSampling",
    "client_accuracies",
    "cohort_size",
    "download_bytes",
    "evaluate_params",
    "params_accuracy",
    "params_bytes",
    "poisson_cohort",
    "sample_cohort",
    "summarize_accuracies",
    "tensor_bytes",
    "upload_bytes",
]
