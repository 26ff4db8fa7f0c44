"""Our federated nouns <-> Flower records (the Message API's payload types).

``Params`` travel as ``ArrayRecord`` (Flower serializes each tensor as an ``Array``); scalar
metrics as ``MetricRecord``; round configuration as ``ConfigRecord``. A ``ClientResult`` becomes
one ``RecordDict`` with an ``update``, an ``extras`` and a ``metrics`` record (the aggregation
weight and the client id ride in ``metrics``). The engine's per-client ``torch.Generator`` is
sent as its state tensor, so a node draws exactly the random numbers an in-process engine would.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from interlearn.errors import UpdateRejected
from interlearn.federated.api import ClientResult
from interlearn.types import Params

__all__ = [
    "params_to_record",
    "record_to_params",
    "result_to_content",
    "content_to_result",
    "generator_to_record",
    "record_to_generator",
    "config_record",
]

_WEIGHT = "__weight__"
_CLIENT = "__client_id__"


def params_to_record(params: Params) -> ArrayRecord:
    """``Params`` as an ``ArrayRecord`` (tensors detached, moved to CPU, made contiguous)."""
    return ArrayRecord({k: v.detach().cpu().contiguous() for k, v in params.items()}, keep_input=True)


def record_to_params(record: ArrayRecord) -> Params:
    """Inverse of :func:`params_to_record`; tensors own their memory (safe to train in place)."""
    return {k: v.clone() for k, v in record.to_torch_state_dict().items()}


def result_to_content(result: ClientResult) -> RecordDict:
    """A client's result as the content of its reply message."""
    metrics = {k: float(v) for k, v in result.metrics.items()}
    metrics[_WEIGHT] = float(result.weight)
    metrics[_CLIENT] = int(result.client_id)
    return RecordDict(
        {
            "update": params_to_record(result.update),
            "extras": params_to_record(result.extras),
            "metrics": MetricRecord(metrics),
        }
    )


def content_to_result(content: RecordDict) -> ClientResult:
    """Inverse of :func:`result_to_content`.

    Raises:
        UpdateRejected: the reply lacks one of the records a result needs.
    """
    missing = [k for k in ("update", "extras", "metrics") if k not in content]
    if missing:
        raise UpdateRejected(f"reply without the record(s) {missing}: is the node running interlearn's ClientApp?")
    metrics = dict(content["metrics"])
    weight = float(metrics.pop(_WEIGHT))
    client_id = int(metrics.pop(_CLIENT))
    return ClientResult(
        client_id=client_id,
        update=record_to_params(content["update"]),
        weight=weight,
        metrics={k: float(v) for k, v in metrics.items()},
        extras=record_to_params(content["extras"]),
    )


def generator_to_record(generator: torch.Generator) -> ArrayRecord:
    """The generator's state (a uint8 tensor) as a one-entry ``ArrayRecord``."""
    return ArrayRecord({"state": generator.get_state()}, keep_input=True)


def record_to_generator(record: ArrayRecord) -> torch.Generator:
    """A CPU generator in the state :func:`generator_to_record` captured."""
    g = torch.Generator()
    g.set_state(record.to_torch_state_dict()["state"].to(torch.uint8).contiguous())
    return g


def config_record(**values: int | float | str | bool) -> ConfigRecord:
    """A ``ConfigRecord`` from keyword values (round index, seed, ...)."""
    return ConfigRecord(dict(values))
