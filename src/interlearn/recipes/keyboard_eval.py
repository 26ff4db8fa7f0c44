"""Next-character keyboard (LEAF's Shakespeare): personalization chosen on validation, on-device frontier.

The pieces ``benchmarks/shakespeare.py`` uses after federated training of the character LSTM:

* :func:`personalize_chars` — every personalized user splits their own training chunks into a
  fitting part and a validation part (the last ``val_fraction``, i.e. their latest lines), and
  chooses fine-tuning steps, an interpolation weight and Ditto's ``lambda`` on it
  (:mod:`interlearn.federated.personalization.select`); the test text only reports. The global
  model saw the validation chunks during federated training (LEAF's split has no validation
  part), which biases the choice toward the global model, never toward a test-set winner.
* :func:`ondevice_chars` — the accuracy-vs-bytes frontier of the global model's encodings
  (int8 / int4 weight-only, low-rank, pruning) and of any extra models (e.g. the distilled
  student), and the most accurate variant within a byte budget (a quarter of the float32
  global model by default) (:mod:`interlearn.ondevice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from interlearn.data.shakespeare import ShakespeareUser
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.federated.personalization.select import SelectConfig, SelectionReport, personalize_validated
from interlearn.federated.server.evaluate import params_accuracy
from interlearn.ondevice.frontier import Variant, choose, measure_variants, plot_frontier
from interlearn.types import Params

__all__ = ["split_validation", "personalize_chars", "ondevice_chars", "CHAR_ENCODINGS"]

CHAR_ENCODINGS = ("float32", "float16", "int8", "int4", "int4-g64", "int4-g32", "lowrank0.5+int8", "prune50+int8")


def split_validation(train: TensorData, fraction: float = 0.2) -> tuple[TensorData, TensorData]:
    """``(fit, val)``: the last ``fraction`` of a user's training chunks (at least one) as validation.

    Raises:
        ConfigError: ``fraction`` outside (0, 1) or fewer than two chunks.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"val_fraction={fraction}: use a value in (0, 1)")
    if len(train) < 2:
        raise ConfigError(
            f"a user with {len(train)} training chunk(s) cannot hold out a validation chunk; pick users with >= 2"
        )
    n_val = max(1, int(len(train) * fraction))
    return TensorData(train.x[: len(train) - n_val], train.y[: len(train) - n_val]), TensorData(
        train.x[len(train) - n_val :], train.y[len(train) - n_val :]
    )


def personalize_chars(
    model: nn.Module,
    params: Params,
    users: Sequence[ShakespeareUser],
    select: SelectConfig,
    val_fraction: float = 0.2,
    max_eval: int | None = None,
) -> SelectionReport:
    """Validation-selected personalization of each user (accuracy over every predicted character).

    Args:
        model: the character LSTM (``output="all"``).
        params: the global model.
        users: users with at least two training chunks.
        select: the candidate grids.
        val_fraction: share of each user's training chunks held out for validation.
        max_eval: cap on test chunks scored per user (``None``: all).
    """

    def score(m: nn.Module, p: Params, data: TensorData) -> float:
        return params_accuracy(m, p, data, max_examples=max_eval)

    rows = []
    for u in users:
        fit, val = split_validation(u.train, val_fraction)
        rows.append((u.name, fit, val, u.test))
    report, _ = personalize_validated(model, params, rows, score, select)
    return report


def ondevice_chars(
    models: dict[str, tuple[nn.Module, Params]],
    test: tuple[torch.Tensor, torch.Tensor],
    encodings: Sequence[str] = CHAR_ENCODINGS,
    budget_fraction: float = 0.25,
    plot: str | Path | None = None,
) -> tuple[list[Variant], Variant, Variant | None]:
    """Every model x encoding on the test chunks; the float32 ``"global"`` model is the reference.

    Args:
        models: ``{"global": (model, params), ...}`` (e.g. also ``"distilled"``).
        test: ``(x, y)`` test chunks.
        encodings: encodings tried for every model.
        budget_fraction: byte budget as a fraction of the float32 global model.
        plot: write the frontier plot here.

    Returns:
        ``(variants, float32 global reference, chosen variant or None)``.

    Raises:
        ConfigError: no ``"global"`` model.
    """
    if "global" not in models:
        raise ConfigError(f"ondevice_chars needs a 'global' model (the float32 reference); got {list(models)}")
    data = TensorData(*test)
    metric = lambda m, p: {"accuracy": params_accuracy(m, p, data)}
    names = ("float32", *[e for e in encodings if e != "float32"])
    variants, _ = measure_variants(models, names, metric, "accuracy")
    ref = next(v for v in variants if v.model == "global" and v.encoding == "float32")
    budget = int(ref.bytes * budget_fraction)
    chosen = choose([v for v in variants if v is not ref], budget)
    if plot is not None:
        plot_frontier(
            variants,
            plot,
            ref,
            budget,
            title=f"Shakespeare characters: on-device variants (budget {budget_fraction:g} x float32)",
        )
    return variants, ref, chosen
