"""The ``federated`` recipe: partition a dataset into clients and train with a strategy.

A YAML recipe names the data and its partition, the model, the client update, the strategy
(with its aggregator: the mean, or a robust rule), the update steps (clipping, differential
privacy, validation, compression, secure aggregation: :mod:`interlearn.recipes.federated_steps`),
the engine and the round schedule; :func:`run` simulates the run
(:func:`interlearn.federated.simulate`) and writes the run folder: ``metrics.jsonl`` (one record
per round), ``checkpoint/``, ``accuracy.png``, ``client_accuracy.png`` and ``partition.png``.
``resume: true`` continues a killed run from its last checkpoint.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from interlearn.config import MAX_LR
from interlearn.data import load_digits, load_mnist
from interlearn.data.femnist import load_femnist
from interlearn.errors import ConfigError
from interlearn.federated import Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.api import ClientUpdate, UpdateStep
from interlearn.federated.client.registry import CLIENT_UPDATES
from interlearn.federated.partition import partition, partition_stats
from interlearn.federated.plots import plot_partition
from interlearn.federated.server.sampling import CohortSampling
from interlearn.federated.strategies import AGGREGATORS, STRATEGIES
from interlearn.models.cnn import mnist_cnn
from interlearn.models.mlp import mlp
from interlearn.recipes.federated_steps import StepSpec, build_steps, check_steps, noise_step
from interlearn.recipes.names import AggregatorName, ClientUpdateName, EngineName, StrategyName
from interlearn.registry import check_names

__all__ = [
    "DataConfig",
    "ModelConfig",
    "ClientConfig",
    "StrategyConfig",
    "StepSpec",
    "Config",
    "run",
    "load_data",
    "build_model",
]


@dataclass(frozen=True)
class DataConfig:
    """Data and its split into clients.

    Attributes:
        dataset: ``"digits"`` (embedded 8x8), ``"mnist"`` or ``"fashion"`` (IDX files), or
            ``"femnist"`` (LEAF JSON; 62 classes, one client per writer).
        data_dir: folder with the data files (default ``$INTERLEARN_DATA``).
        num_clients: clients in the population (FEMNIST: the first ``num_clients`` writers).
        partitioner: ``iid``, ``dirichlet`` (label skew, ``alpha``), ``shards`` (McMahan's
            ``shards_per_client`` classes per client), ``quantity`` (size skew, ``alpha``) or
            ``natural`` (FEMNIST's writers; the only choice for FEMNIST).
        alpha: concentration of ``dirichlet`` / ``quantity``.
        shards_per_client: shards per client for ``shards``.
    """

    dataset: Literal["digits", "mnist", "fashion", "femnist"] = "digits"
    data_dir: str | None = None
    num_clients: int = 20
    partitioner: Literal["iid", "dirichlet", "shards", "quantity", "natural"] = "dirichlet"
    alpha: float = 0.5
    shards_per_client: int = 2

    def __post_init__(self) -> None:
        if self.num_clients < 1:
            raise ConfigError(f"num_clients={self.num_clients}: must be >= 1")
        if not self.alpha > 0:
            raise ConfigError(f"alpha={self.alpha}: must be > 0")
        if self.shards_per_client < 1:
            raise ConfigError(f"shards_per_client={self.shards_per_client}: must be >= 1")
        if (self.dataset == "femnist") != (self.partitioner == "natural"):
            raise ConfigError(
                f"partitioner={self.partitioner!r} with dataset={self.dataset!r}: FEMNIST is split by writer "
                "(partitioner: natural), and natural partitions need FEMNIST's writer ids"
            )


@dataclass(frozen=True)
class ModelConfig:
    """The model.

    Attributes:
        name: ``"mlp"`` (``hidden`` widths; 784-200-200-10 is McMahan's 2NN) or ``"cnn"``
            (McMahan's CNN, ``channels`` and ``hidden[0]`` as its sizes).
        hidden: hidden widths (MLP) or the fully connected width (CNN, first entry).
        channels: the CNN's two convolution widths.
    """

    name: Literal["mlp", "cnn"] = "mlp"
    hidden: tuple[int, ...] = (32,)
    channels: tuple[int, ...] = (32, 64)

    def __post_init__(self) -> None:
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ConfigError(f"hidden={self.hidden}, channels={self.channels}: sizes must be >= 1")
        if self.name == "cnn" and (len(self.channels) != 2 or not self.hidden):
            raise ConfigError(
                f"cnn needs two channels and one hidden width, got channels={self.channels}, hidden={self.hidden}"
            )


@dataclass(frozen=True)
class ClientConfig:
    """Local training: the client update registered as ``update`` (``local_sgd``:
    :class:`~interlearn.federated.LocalSGD`; ``scaffold``: :class:`~interlearn.federated.ScaffoldClient`,
    which needs ``strategy.name: scaffold``; or one registered from user code with
    :func:`~interlearn.federated.register_client_update`), built with these settings.

    Attributes:
        update: the registered client update's name.
        options: the update's own keyword arguments beyond the ones below (e.g. ``alpha``).
        epochs, steps, batch_size, lr, optimizer, momentum, weight_decay, prox_mu: local
            training (see :class:`~interlearn.federated.LocalSGD`).
        scaffold: ``true`` is ``update: scaffold`` (kept for older recipes).
    """

    update: ClientUpdateName = "local_sgd"
    options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    steps: int | None = None
    batch_size: int | None = 10
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    scaffold: bool = False

    def __post_init__(self) -> None:
        if not self.lr <= MAX_LR:
            raise ConfigError(
                f"lr={self.lr:g}: a local learning rate above {MAX_LR:g} diverges on every model here; typical values are 0.01-1"
            )
        check_names(self)
        taken = sorted(set(self.options) & {f.name for f in fields(self)})
        if taken:
            raise ConfigError(f"options: {taken} are fields of client; set them there, not in options")
        if self.scaffold and self.update not in ("local_sgd", "scaffold"):
            raise ConfigError(f"scaffold: true with update: {self.update!r}: give one of them (update: scaffold)")
        self.build()  # validates every value with the update's own checks

    @property
    def name(self) -> str:
        """The client update's registered name (``scaffold: true`` means ``scaffold``)."""
        return "scaffold" if self.scaffold else self.update

    def build(self) -> ClientUpdate:
        update: ClientUpdate = CLIENT_UPDATES.build(
            self.name,
            **self.options,
            epochs=self.epochs,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            prox_mu=self.prox_mu,
        )
        return update


@dataclass(frozen=True)
class StrategyConfig:
    """Server strategy by name (``fedavg``, ``fedavgm``, ``fedadam``, ``fedyogi``,
    ``fedadagrad``, ``scaffold``, ``qfedavg``, or one registered with
    :func:`~interlearn.federated.register_strategy`) with its keyword arguments in ``options``
    (e.g. ``lr``, ``momentum``, ``beta1``, ``beta2``, ``tau``), and how the cohort's updates
    combine: an aggregator by name (``mean``; robust rules ``median``, ``trimmed_mean``,
    ``krum``, ``multi_krum``, ``norm_bound``, ``bulyan``; or a registered one) with its options
    in ``aggregator_options`` (e.g. ``num_byzantine``, ``trim_ratio``, ``max_norm``). A
    strategy whose factory takes ``num_clients`` (SCAFFOLD's) gets the population size."""

    name: StrategyName = "fedavg"
    options: dict[str, float] = field(default_factory=dict)
    aggregator: AggregatorName | None = None
    aggregator_options: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_names(self)
        if self.aggregator is None:
            if self.aggregator_options:
                raise ConfigError(
                    f"aggregator_options={self.aggregator_options} without an aggregator: name one, e.g. aggregator: median"
                )
            return
        try:
            AGGREGATORS.build(self.aggregator, **self.aggregator_options)  # validates the options too
        except ConfigError as exc:
            raise ConfigError(f"aggregator: {exc}") from None

    def build(self, num_clients: int) -> Any:
        """The strategy (SCAFFOLD learns the population size)."""
        opts: dict[str, Any] = dict(self.options)
        if "num_clients" in inspect.signature(STRATEGIES.get(self.name)).parameters:
            opts.setdefault("num_clients", num_clients)
        if self.aggregator is not None:
            opts["aggregator"] = AGGREGATORS.build(self.aggregator, **self.aggregator_options)
        return get_strategy(self.name, **opts)


@dataclass(frozen=True)
class Config:
    """The ``federated`` recipe (see the module docstring and ``examples/federated.yaml``).

    Attributes:
        data, model, client, strategy: see their classes.
        engine: ``"auto"`` (the fastest for the model and machine, logged), ``"sequential"``,
            ``"vectorized"``, ``"multicore"``, ``"ray"``, or one registered with
            :func:`~interlearn.federated.register_engine`.
        rounds, clients_per_round, dropout, min_survivors, eval_every, checkpoint_every: the
            round schedule (:class:`~interlearn.federated.SimulationConfig`).
        seed: model, partition and sampling seed.
        resume: continue from the run folder's checkpoint.
        steps: the update steps, clients' order (``[{clip: ...}, {dp: ...}, {validate: ...},
            {compress: ...}, {secagg: ...}]``, :mod:`interlearn.recipes.federated_steps`); with
            ``dp`` the summary states epsilon and what it covers.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    engine: EngineName = "auto"
    rounds: int = 30
    clients_per_round: int = 10
    dropout: float = 0.0
    min_survivors: int = 1
    eval_every: int = 1
    checkpoint_every: int = 10
    seed: int = 0
    resume: bool = False
    steps: tuple[StepSpec, ...] = ()

    def __post_init__(self) -> None:
        check_names(self)
        if self.eval_every < 1:
            raise ConfigError(
                f"eval_every={self.eval_every}: must be >= 1 (the last round is always evaluated; use eval_every: {self.rounds} for only that)"
            )
        if self.clients_per_round < 1:
            raise ConfigError(f"clients_per_round={self.clients_per_round}: must be >= 1")
        if self.clients_per_round > self.data.num_clients:
            raise ConfigError(
                f"clients_per_round={self.clients_per_round} exceeds data.num_clients={self.data.num_clients}"
            )
        if (self.client.name == "scaffold") != (self.strategy.name == "scaffold"):
            raise ConfigError(
                "client.update: scaffold and strategy.name: scaffold go together (SCAFFOLD needs both sides)"
            )
        self.simulation(progress=False)  # validates the schedule
        check_steps(self.steps)
        kinds = [s.kind for s in self.steps]
        mean_based = self.strategy.name not in ("scaffold", "qfedavg") and self.strategy.aggregator in (
            None,
            "mean",
            "uniform_mean",
        )
        for kind, why in (
            ("dp", "central DP releases one noised mean"),
            ("secagg", "secure aggregation reveals only the sum"),
        ):
            if kind in kinds and not mean_based:
                raise ConfigError(
                    f"steps: {kind} with strategy {self.strategy.name!r} / aggregator {self.strategy.aggregator!r}: {why}, so use a "
                    "mean-based strategy (fedavg, fedavgm, fedadam, fedyogi, fedadagrad) without a robust aggregator"
                )
        if "dp" in kinds and self.min_survivors > 1:
            raise ConfigError(
                f"min_survivors={self.min_survivors} with a dp step: every round must release an update; set min_survivors: 1"
            )
        self.update_steps()  # builds every step: a DP setting no accountant supports is refused here

    def update_steps(self) -> list[UpdateStep]:
        """The recipe's update steps, built for its population and cohort."""
        return build_steps(self.steps, self.data.num_clients, self.clients_per_round)

    def simulation(self, progress: bool) -> SimulationConfig:
        return SimulationConfig(
            rounds=self.rounds,
            clients_per_round=self.clients_per_round,
            dropout=self.dropout,
            min_survivors=self.min_survivors,
            eval_every=self.eval_every,
            checkpoint_every=self.checkpoint_every,
            seed=self.seed,
            progress=progress,
        )


def load_data(
    cfg: DataConfig,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], int, int, list[torch.Tensor] | None]:
    """``(train, test, input_side, num_classes, natural_parts)``; images are (N, 1, side, side);
    ``natural_parts`` is one index tensor per FEMNIST writer (``None`` for the others)."""
    if cfg.dataset == "digits":
        tr, te = load_digits(seed=0, image=True)
        return (tr.x, tr.y), (te.x, te.y), 8, 10, None
    if cfg.dataset == "femnist":
        tr_f = load_femnist("train", cfg.data_dir, max_users=cfg.num_clients)
        te_f = load_femnist("test", cfg.data_dir, max_users=cfg.num_clients)
        sizes = [len(d) for d in tr_f.data]
        starts = torch.tensor([0, *sizes]).cumsum(0).tolist()
        parts = [torch.arange(starts[i], starts[i + 1]) for i in range(len(sizes))]
        train = (torch.cat([d.x for d in tr_f.data]), torch.cat([d.y for d in tr_f.data]))
        test = (torch.cat([d.x for d in te_f.data]), torch.cat([d.y for d in te_f.data]))
        return train, test, 28, 62, parts
    tr = load_mnist("train", cfg.data_dir, kind=cfg.dataset)
    te = load_mnist("test", cfg.data_dir, kind=cfg.dataset)
    return (tr.x, tr.y), (te.x, te.y), 28, 10, None


def build_model(cfg: ModelConfig, side: int, num_classes: int, seed: int) -> nn.Module:
    """The recipe's model for ``side x side`` grey images."""
    if cfg.name == "cnn":
        return mnist_cnn(num_classes, (cfg.channels[0], cfg.channels[1]), cfg.hidden[0], side, seed=seed)
    return mlp(side * side, list(cfg.hidden), num_classes, seed=seed)


def run(config: Config, run_dir: str | Path, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Run the recipe; return the summary row ``{"federated": {...}}``."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test, side, classes, natural = load_data(config.data)
    x, y = train
    parts = natural if natural is not None else _partition(config, y)
    if config.clients_per_round > len(parts):
        raise ConfigError(f"clients_per_round={config.clients_per_round} exceeds the {len(parts)} clients the data has")
    stats = partition_stats(y, parts, num_classes=classes)
    plot_partition(stats["counts"], out / "partition.png")
    (out / "partition.json").write_text(json.dumps({k: v for k, v in stats.items() if k != "counts"}, indent=2))
    model = build_model(config.model, side, classes, config.seed)
    strategy = config.strategy.build(len(parts))
    steps = build_steps(config.steps, len(parts), config.clients_per_round)
    t0 = time.perf_counter()
    res = simulate(
        model,
        Population(x, y, parts),
        config.client.build(),
        strategy,
        config.simulation(progress),
        engine=config.engine,
        test=test,
        run_dir=out,
        resume=config.resume,
        steps=steps,
    )
    seconds = time.perf_counter() - t0
    accs = list(res.client_accuracy.values())
    row = {
        "accuracy": res.final_accuracy,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_seconds": seconds,
        "bytes_communicated": res.bytes_down + res.bytes_up,
        "rounds": len(res.history),
        "client_accuracy_mean": sum(accs) / len(accs) if accs else None,
        "client_accuracy_min": min(accs) if accs else None,
        "strategy": config.strategy.name,
        "client_update": config.client.name,
        "engine": config.engine,
    }
    noise = noise_step(steps)
    if noise is not None and noise.accountant is not None:
        row["epsilon"] = noise.accountant.epsilon()
        row["delta"] = noise.accountant.delta
        ran = None
        if noise.sampling is not None:
            ran = CohortSampling.build(
                noise.sampling.kind, len(parts), clients_per_round=config.clients_per_round, dropout=config.dropout
            )
        (out / "notes.md").write_text("## Privacy\n\n" + noise.summary(ran) + "\n")
    return {"federated": row}


def _partition(config: Config, y: torch.Tensor) -> list[torch.Tensor]:
    """The clients' example indices from ``config.data``'s partitioner (seeded by ``config.seed``)."""
    d = config.data
    kw: dict[str, Any] = {"seed": config.seed}
    if d.partitioner in ("dirichlet", "quantity"):
        kw["alpha"] = d.alpha
    if d.partitioner == "shards":
        kw["shards_per_client"] = d.shards_per_client
    return partition(d.partitioner, y, d.num_clients, **kw)
