"""Plugins without editing interlearn: a strategy, an aggregator, an engine, a client update and
an update step registered from this test module are accepted by the ``federated`` recipe and
used by its run; unknown names fail with the known names listed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from interlearn.errors import ConfigError
from interlearn.federated import (
    ClientResult,
    LocalSGD,
    RoundContext,
    ServerStrategy,
    register_aggregator,
    register_client_update,
    register_engine,
    register_step,
    register_strategy,
)
from interlearn.federated.api import Aggregator, CohortOutcome, CohortTask, UpdateStep
from interlearn.federated.client.registry import CLIENT_UPDATES
from interlearn.federated.engines import ENGINES, SequentialEngine
from interlearn.federated.strategies import AGGREGATORS, STRATEGIES, ServerSGD, WeightedMean
from interlearn.federated.update_steps import UPDATE_STEPS
from interlearn.recipes import federated as recipe
from interlearn.schema import build
from interlearn.types import Params

CALLS: Counter[str] = Counter()


class HalfStepStrategy(ServerStrategy):
    """FedAvg with a server learning rate of one half (a user's strategy)."""

    def __init__(self, aggregator=None) -> None:
        super().__init__(ServerSGD(lr=0.5), aggregator, name="half_step")

    def aggregate(self, params, results, state):
        CALLS["strategy"] += 1
        return super().aggregate(params, results, state)


class CountingMean(Aggregator):
    """The uniform mean, counting its calls (a user's aggregator)."""

    name = "counting_mean"
    uses_weights = False

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        CALLS["aggregator"] += 1
        return WeightedMean(uniform=True)(results)


class CountingEngine(SequentialEngine):
    """The sequential engine, counting cohorts (a user's engine)."""

    name = "counting_engine"

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        CALLS["engine"] += 1
        return super().run_cohort(task)


@dataclass(frozen=True)
class CountingSGD(LocalSGD):
    """LocalSGD with a tag option, counting local trainings (a user's client update)."""

    tag: str = "x"

    def finish(self, params, state, client_state, ctx, steps):
        CALLS[f"client:{self.tag}"] += 1
        return super().finish(params, state, client_state, ctx, steps)


class Stamp(UpdateStep):
    """An update step that stamps each client result's metrics (a user's step)."""

    def __init__(self, value: float = 1.0) -> None:
        self.name = "stamp"
        self.value = value

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        CALLS["step:client"] += 1
        return ClientResult(result.client_id, result.update, result.weight, {**result.metrics, "stamp": self.value})

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        CALLS["step:server"] += 1
        assert all(r.metrics["stamp"] == self.value for r in results)
        return list(results)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        return new


@pytest.fixture
def plugins() -> Iterator[None]:
    """Register the plugins from this (test) module, and remove them afterwards."""
    CALLS.clear()
    register_strategy("half_step", HalfStepStrategy)
    register_aggregator("counting_mean", CountingMean)
    register_engine("counting_engine", CountingEngine)
    register_client_update("counting_sgd", CountingSGD)
    register_step("stamp", Stamp)
    yield
    for registry, name in (
        (STRATEGIES, "half_step"),
        (AGGREGATORS, "counting_mean"),
        (ENGINES, "counting_engine"),
        (CLIENT_UPDATES, "counting_sgd"),
        (UPDATE_STEPS, "stamp"),
    ):
        registry.unregister(name)


RECIPE = {
    "data": {"dataset": "digits", "num_clients": 4, "partitioner": "iid"},
    "model": {"name": "mlp", "hidden": [8]},
    "client": {"update": "counting_sgd", "options": {"tag": "mine"}, "steps": 2, "batch_size": 16, "lr": 0.1},
    "strategy": {"name": "half_step", "aggregator": "counting_mean"},
    "steps": [{"clip": {"max_norm": 5.0}}, {"step": {"name": "stamp", "options": {"value": 2.0}}}],
    "engine": "counting_engine",
    "rounds": 2,
    "clients_per_round": 2,
    "checkpoint_every": 0,
}


def test_plugins_registered_from_user_code_run_in_a_recipe(plugins, tmp_path):
    cfg = build(recipe.Config, RECIPE, "federated")
    row = recipe.run(cfg, tmp_path, progress=False)["federated"]
    assert row["strategy"] == "half_step" and row["engine"] == "counting_engine" and row["rounds"] == 2
    assert CALLS["engine"] == 2  # one cohort per round
    assert CALLS["strategy"] == 2 and CALLS["aggregator"] == 2
    assert CALLS["client:mine"] >= 4  # 2 clients x 2 rounds (+ the engine's warm-up)
    assert CALLS["step:client"] == 4 and CALLS["step:server"] == 2
    records = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2


@pytest.mark.parametrize(
    "over, message",
    [
        ({"engine": "countin_engine"}, r"federated.engine: unknown engine 'countin_engine'.*'counting_engine'"),
        ({"strategy": {"name": "half_stepp"}}, r"federated.strategy.name: unknown strategy 'half_stepp'.*'half_step'"),
        (
            {"strategy": {"name": "fedavg", "aggregator": "counting"}},
            r"federated.strategy.aggregator: unknown aggregator 'counting'.*'counting_mean'",
        ),
        (
            {"client": {"update": "countng_sgd"}},
            r"federated.client.update: unknown client update 'countng_sgd'.*'local_sgd'",
        ),
        (
            {"steps": [{"step": {"name": "stmp"}}]},
            r"federated.steps\[0\].step.name: unknown update step 'stmp'.*'stamp'",
        ),
        ({"steps": [{"step": {"name": "stamp", "options": {"valu": 1.0}}}]}, r"update step 'stamp'.*valu"),
        ({"client": {"update": "counting_sgd", "options": {"lr": 1.0}}}, r"options: \['lr'\] are fields of client"),
    ],
)
def test_unknown_names_list_the_known_ones(plugins, over, message):
    with pytest.raises(ConfigError, match=message):
        build(recipe.Config, {**RECIPE, **over}, "federated")


def test_python_configs_check_names_too(plugins):
    with pytest.raises(ConfigError, match=r"engine: unknown engine 'gpu'; known engines: \[.*'counting_engine'"):
        recipe.Config(engine="gpu")
    assert recipe.Config(engine="counting_engine").engine == "counting_engine"


def test_a_name_is_registered_once(plugins):
    with pytest.raises(ConfigError, match="already registered"):
        register_engine("counting_engine", CountingEngine)
