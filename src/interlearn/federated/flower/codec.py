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
    "as_int",
    "as_float",
]

Record = ArrayRecord | MetricRecord | ConfigRecord
"""What a ``RecordDict`` entry may be."""

_WEIGHT = "__weight__"
_CLIENT = "__client_id__"


def params_to_record(params: Params) -> ArrayRecord:
    """``Params`` as an ``ArrayRecord`` (tensors detached, moved to CPU, made contiguous)."""
    return ArrayRecord({k: v.detach().cpu().contiguous() for k, v in params.items()}, keep_input=True)


def _arrays(record: Record) -> ArrayRecord:
    if not isinstance(record, ArrayRecord):
        raise UpdateRejected(
            f"expected an ArrayRecord of tensors, got a {type(record).__name__}: is the peer running interlearn?"
        )
    return record


def as_int(value: object) -> int:
    """A record's number as an ``int`` (a malformed message is rejected, not trusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UpdateRejected(f"expected a number in the message, got {value!r}")
    return int(value)


def as_float(value: object) -> float:
    """A record's number as a ``float`` (see :func:`as_int`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UpdateRejected(f"expected a number in the message, got {value!r}")
    return float(value)


def record_to_params(record: Record) -> Params:
    """Inverse of :func:`params_to_record`; tensors own their memory (safe to train in place).

    Raises:
        UpdateRejected: ``record`` is not an ``ArrayRecord``.
    """
    return {k: v.clone() for k, v in _arrays(record).to_torch_state_dict().items()}


def result_to_content(result: ClientResult) -> RecordDict:
    """A client's result as the content of its reply message."""
    metrics: dict[str, int | float | list[int] | list[float]] = {k: float(v) for k, v in result.metrics.items()}
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
    weight = as_float(metrics.pop(_WEIGHT))
    client_id = as_int(metrics.pop(_CLIENT))
    return ClientResult(
        client_id=client_id,
        update=record_to_params(content["update"]),
        weight=weight,
        metrics={k: as_float(v) for k, v in metrics.items()},
        extras=record_to_params(content["extras"]),
    )


def generator_to_record(generator: torch.Generator) -> ArrayRecord:
    """The generator's state (a uint8 tensor) as a one-entry ``ArrayRecord``."""
    return ArrayRecord({"state": generator.get_state()}, keep_input=True)


def record_to_generator(record: Record) -> torch.Generator:
    """A CPU generator in the state :func:`generator_to_record` captured."""
    g = torch.Generator()
    g.set_state(_arrays(record).to_torch_state_dict()["state"].to(torch.uint8).contiguous())
    return g


def config_record(**values: int | float | str | bool) -> ConfigRecord:
    """A ``ConfigRecord`` from keyword values (round index, seed, ...)."""
    return ConfigRecord(dict(values))
