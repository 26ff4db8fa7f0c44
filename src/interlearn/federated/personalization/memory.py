"""Personalization by a local memory: kNN-Per (Marfoq et al. 2022) over any model.

Every user keeps, on their own device, a **datastore** of ``(representation, label)`` pairs: the
global model's hidden representation of each of their own training examples (for a sequence
model, of each position) and the label that followed. A prediction mixes the global model with
the user's nearest neighbours,

    p(y | x) = lam * p_kNN(y | x) + (1 - lam) * p_global(y | x),
    p_kNN(y | x) ∝ sum over the k nearest keys k_i with label y of exp(-d(x, k_i) / tau),

as kNN-LM (Khandelwal et al. 2020, "Generalization through Memorization", ICLR) does for a
language model and kNN-Per (Marfoq, Neglia, Vidal & Kameni 2022, "Personalized Federated
Learning through Local Memorization", ICML) does per client. ``d`` is the squared L2 distance
on raw features (faiss's ``IndexFlatL2``, what both papers use) or the cosine distance.

The representation is the input of a module picked by name (the cut-point names of
:mod:`interlearn.cuts`; ``"head"`` for interlearn's LSTM and CNN: the last hidden state at each
position, what the final linear layer reads) or its output (``"proj"`` of the word CIFG, the
projection the tied output layer reads).

``lam``, ``k`` and the temperature are chosen **per user on their validation split**; the grid
always holds ``lam = 0`` (the global model), so a user for whom the memory does not help on
validation keeps the global model (the gating of Wang et al. 2019, "Federated Evaluation of
On-device Personalization"). Temperatures are given in units of the user's median
nearest-neighbour distance on validation, so one grid fits any model. Once chosen, the
validation examples join the datastore (Marfoq et al. do the same with their held-out split).

The datastore is built on the device and never uploaded: :class:`MemoryUpdate` wraps a client
update, refreshes the memory as private client state, and sends exactly what the wrapped update
sends.

Nearest neighbours are exact, by ``torch.cdist``-style matrix products and ``topk`` (faiss's
flat index computes the same; at a personal datastore's size, thousands of keys, a torch search
of one query takes well under a millisecond).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError, closest
from interlearn.federated.api import ClientData, ClientResult
from interlearn.types import Params

__all__ = [
    "MemoryConfig",
    "Encoded",
    "Datastore",
    "Setting",
    "Memory",
    "MemoryModel",
    "encode",
    "build_datastore",
    "knn_log_probs",
    "mix_log_probs",
    "grid_scores",
    "choose_setting",
    "population_setting",
    "setting_for",
    "personalize_memory",
    "MemoryUpdate",
]


@dataclass(frozen=True)
class MemoryConfig:
    """Where the representation comes from and what each user tries.

    Attributes:
        layer: name of the module whose input (``side="input"``) or output is the
            representation (``"head"``: what the final linear layer reads).
        side: ``"input"`` or ``"output"`` of ``layer``.
        metric: ``"l2"`` (squared Euclidean on raw features, as faiss) or ``"cosine"``.
        lams: mixture weights tried (``0`` is always added: the global model).
        ks: neighbour counts tried.
        temperatures: kNN temperatures tried, in units of the user's median squared (or
            cosine) distance to the nearest neighbour on validation.
        select_by: ``"accuracy"`` (validation hits, ties broken by log-loss) or ``"loss"``
            (validation log-loss; a setting that lowers validation accuracy is never taken).
        add_validation: after choosing, add the validation examples to the datastore.
        key_dtype: how keys are stored on the device (``"float16"`` halves the bytes).
        ignore_labels: labels never stored or scored (padding; for the keyboard also the
            out-of-vocabulary and beginning tokens, as top-1 recall of Hard et al. 2018).
        mask_classes: classes the model never predicts (their logits are dropped before the
            softmax; the keyboard never suggests a special token).
        batch_size: examples per forward pass when encoding.
    """

    layer: str = "head"
    side: Literal["input", "output"] = "input"
    metric: Literal["l2", "cosine"] = "l2"
    lams: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    ks: tuple[int, ...] = (5, 10, 20, 50)
    temperatures: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    select_by: Literal["accuracy", "loss"] = "accuracy"
    add_validation: bool = True
    key_dtype: Literal["float32", "float16"] = "float16"
    ignore_labels: tuple[int, ...] = ()
    mask_classes: tuple[int, ...] = ()
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.side not in ("input", "output"):
            raise ConfigError(f"MemoryConfig.side={self.side!r}; use 'input' or 'output' of the layer")
        if self.metric not in ("l2", "cosine"):
            raise ConfigError(f"MemoryConfig.metric={self.metric!r}; use 'l2' (raw features, as faiss) or 'cosine'")
        if not self.lams or any(not 0.0 <= v <= 1.0 for v in self.lams):
            raise ConfigError(f"MemoryConfig.lams={self.lams}: mixture weights in [0, 1]")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"MemoryConfig.ks={self.ks}: neighbour counts >= 1")
        if not self.temperatures or any(not t > 0 for t in self.temperatures):
            raise ConfigError(f"MemoryConfig.temperatures={self.temperatures}: positive values")
        if self.select_by not in ("accuracy", "loss"):
            raise ConfigError(f"MemoryConfig.select_by={self.select_by!r}; use 'accuracy' or 'loss'")
        if self.key_dtype not in ("float32", "float16"):
            raise ConfigError(f"MemoryConfig.key_dtype={self.key_dtype!r}; use 'float32' or 'float16'")
        if self.batch_size < 1:
            raise ConfigError(f"MemoryConfig.batch_size={self.batch_size}: must be >= 1")


@dataclass(frozen=True)
class Encoded:
    """Scored examples of one user: representations (N, D), the model's log-probabilities
    (N, C) and the labels (N,), one row per scored position."""

    keys: torch.Tensor
    log_probs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.numel())


def _module(model: nn.Module, name: str) -> nn.Module:
    names = [n for n, _ in model.named_modules() if n]
    if name not in names:
        raise ConfigError(
            f"MemoryConfig.layer={name!r} is not a module of {type(model).__name__}; {closest(name, names)}"
        )
    return model.get_submodule(name)


def _rows(t: torch.Tensor, positions: int) -> torch.Tensor:
    """(B, [T,] D) -> (B*T, D); positions is T or 0 (no time axis)."""
    return t.reshape(-1, t.shape[-1]) if positions else t.reshape(t.shape[0], -1)


@torch.no_grad()
def encode(model: nn.Module, params: Params | None, data: TensorData, config: MemoryConfig) -> Encoded:
    """The representation at ``config.layer`` and the model's log-probabilities of every scored
    example of ``data`` (every position for (B, T) labels; ``ignore_labels`` dropped).

    Logits of a sequence model may be (B, C, T) (``F.cross_entropy``'s layout) or (B, T, C).

    Raises:
        ConfigError: ``layer`` names no module.
        ShapeError-like DataError: the representation and the labels disagree in count.
    """
    mod = _module(model, config.layer)
    captured: list[torch.Tensor] = []

    def pre(_m: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0])

    def post(_m: nn.Module, _args: tuple[Any, ...], out: Any) -> None:
        captured.append(out[0] if isinstance(out, tuple) else out)

    handle = mod.register_forward_pre_hook(pre) if config.side == "input" else mod.register_forward_hook(post)
    was = model.training
    model.eval()
    keys, logps, labels = [], [], []
    try:
        for s in range(0, len(data), config.batch_size):
            x, y = data.x[s : s + config.batch_size], data.y[s : s + config.batch_size]
            captured.clear()
            out = model(x) if params is None else functional_call(model, params, (x,))
            feats = captured[-1].float()
            if y.dim() == 2:  # a label per position
                t = y.shape[1]
                if out.dim() == 3 and out.shape[-1] == t and out.shape[1] != t:
                    out = out.transpose(1, 2)  # (B, C, T) -> (B, T, C)
                out, feats, yy = out.reshape(-1, out.shape[-1]), _rows(feats, t), y.reshape(-1)
            else:
                feats, yy = _rows(feats, 0), y
            if feats.shape[0] != yy.numel():
                raise DataError(
                    f"layer {config.layer!r} ({config.side}) gives {feats.shape[0]} rows for {yy.numel()} labels; "
                    "pick the layer that reads one representation per prediction (e.g. 'head')"
                )
            keep = torch.ones_like(yy, dtype=torch.bool)
            for label in config.ignore_labels:
                keep &= yy != label
            logits = out.float()[keep]
            if config.mask_classes:
                logits[:, list(config.mask_classes)] = float("-inf")
            keys.append(feats[keep])
            logps.append(F.log_softmax(logits, -1))
            labels.append(yy[keep].long())
    finally:
        handle.remove()
        model.train(was)
    if not keys:
        raise DataError("encode: no examples")
    return Encoded(torch.cat(keys), torch.cat(logps), torch.cat(labels))


_QUERY_BLOCK = 512


@dataclass(frozen=True)
class Datastore:
    """A user's memory: keys (N, D) in their storage dtype and labels (N,), on the device only."""

    keys: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    metric: str = "l2"

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def nbytes(self) -> int:
        """What the device stores: keys plus labels (in the smallest integer type that fits)."""
        label_bytes = 1 if self.num_classes <= 256 else 2 if self.num_classes <= 65536 else 4
        return int(self.keys.numel() * self.keys.element_size() + len(self) * label_bytes)

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``k`` nearest neighbours of each query: (distances (Q, k'), labels (Q, k')),
        ``k' = min(k, len(self))``, nearest first."""
        keys, norms = self._search_keys
        kk = min(k, len(self))
        dists, idxs = [], []
        for s in range(0, queries.shape[0], _QUERY_BLOCK):  # blocks bound the (queries x keys) matrix
            q = queries[s : s + _QUERY_BLOCK].float()
            if self.metric == "cosine":
                d = 1.0 - F.normalize(q, dim=-1) @ keys.t()
            else:
                d = torch.addmm(norms, q, keys.t(), alpha=-2.0).add_((q * q).sum(-1, keepdim=True)).clamp_min_(0.0)
            dist, idx = d.topk(kk, dim=-1, largest=False, sorted=True)
            dists.append(dist)
            idxs.append(idx)
        if not dists:
            return queries.new_zeros(0, kk), self.labels.new_zeros(0, kk)
        return torch.cat(dists), self.labels[torch.cat(idxs)]

    @cached_property
    def _search_keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 keys (unit length for cosine) and their squared norms, computed once per
        datastore (the stored keys may be float16)."""
        keys = self.keys.float()
        if self.metric == "cosine":
            keys = F.normalize(keys, dim=-1)
        return keys, (keys * keys).sum(-1)

    def extend(self, other: Encoded) -> Datastore:
        """A new datastore with ``other``'s examples added."""
        return replace(
            self,
            keys=torch.cat([self.keys, other.keys.to(self.keys.dtype)]),
            labels=torch.cat([self.labels, other.labels.to(self.labels.dtype)]),
        )


def build_datastore(enc: Encoded, num_classes: int, config: MemoryConfig) -> Datastore:
    """The datastore of a user's encoded training examples.

    Raises:
        DataError: no examples.
    """
    if len(enc) == 0:
        raise DataError("build_datastore: the user has no training examples to remember")
    dtype = torch.float16 if config.key_dtype == "float16" else torch.float32
    return Datastore(enc.keys.to(dtype).contiguous(), enc.labels.clone(), num_classes, config.metric)


def knn_log_probs(
    dist: torch.Tensor, labels: torch.Tensor, k: int, temperature: float, num_classes: int
) -> torch.Tensor:
    """``log p_kNN`` (Q, C) from the ``k`` nearest neighbours: ``softmax(-d / temperature)``
    weights summed per label (classes without a neighbour get probability 0)."""
    d, lab = dist[:, :k], labels[:, :k]
    w = torch.softmax(-d / temperature, dim=-1)
    p = torch.zeros(d.shape[0], num_classes, dtype=w.dtype).scatter_add_(1, lab.long(), w)
    return p.clamp_min(1e-30).log()


def mix_log_probs(global_log_probs: torch.Tensor, knn: torch.Tensor, lam: float) -> torch.Tensor:
    """``log(lam * p_kNN + (1 - lam) * p_global)``, stably."""
    if lam <= 0.0:
        return global_log_probs
    if lam >= 1.0:
        return knn
    return torch.logaddexp(knn + math.log(lam), global_log_probs + math.log1p(-lam))


@dataclass(frozen=True)
class Setting:
    """A user's choice: mixture weight, neighbours, absolute temperature (``lam = 0``: the
    global model), with the validation score it was chosen on."""

    lam: float
    k: int
    temperature: float
    relative_temperature: float = 0.0
    val_accuracy: float = 0.0
    val_loss: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "lam": self.lam,
            "k": self.k,
            "temperature": self.temperature,
            "relative_temperature": self.relative_temperature,
        }


def _scale(dist: torch.Tensor) -> float:
    """The median nearest-neighbour distance (the temperature unit); 1.0 when degenerate."""
    s = float(dist[:, 0].median()) if dist.numel() else 0.0
    return s if s > 1e-12 else 1.0


def grid_scores(
    store: Datastore, val: Encoded, config: MemoryConfig, unit: float | None = None
) -> list[tuple[Setting, int, float]]:
    """Every candidate of the grid on ``val``: ``(setting, hits, summed log-loss)``; the first
    entry is the global model (``lam = 0``), then lam-major, k, temperature in grid order.
    Temperatures are in units of ``unit`` (default: the median nearest-neighbour distance of
    ``val``'s queries)."""
    dist, lab = store.search(val.keys, max(config.ks))
    unit = _scale(dist) if unit is None else unit
    y = val.labels

    def score(logp: torch.Tensor) -> tuple[int, float]:
        return int((logp.argmax(-1) == y).sum()), float(-logp.gather(1, y[:, None]).sum())

    out = [(Setting(0.0, 0, 0.0), *score(val.log_probs))]
    knns = {
        (k, t): knn_log_probs(dist, lab, k, t * unit, store.num_classes)
        for k in sorted(set(config.ks))
        for t in config.temperatures
    }
    for lam in sorted(set(config.lams) - {0.0}):
        for (k, t), kl in knns.items():
            out.append((Setting(lam, k, t * unit, t), *score(mix_log_probs(val.log_probs, kl, lam))))
    return out


def _pick(grid: Sequence[tuple[Setting, int, float]], n: int, select_by: str) -> Setting:
    """The best candidate (ties: the earliest, i.e. the global model first); never one with
    fewer validation hits than the global model."""
    g_hits = grid[0][1]
    if select_by == "loss":
        allowed = [c for c in grid if c[1] >= g_hits]
        best = min(allowed, key=lambda c: c[2])
    else:
        best = max(grid, key=lambda c: (c[1], -c[2]))
    s, hits, loss = best
    return replace(s, val_accuracy=hits / max(n, 1), val_loss=loss / max(n, 1))


def choose_setting(store: Datastore, val: Encoded, config: MemoryConfig) -> Setting:
    """The user's own ``lam``, ``k`` and temperature, chosen on their validation split; the
    global model (``lam = 0``) unless a memory setting does better there.

    Raises:
        DataError: an empty validation split.
    """
    if len(val) == 0:
        raise DataError("choose_setting: the user's validation split is empty; use population_setting's choice")
    return _pick(grid_scores(store, val, config), len(val), config.select_by)


def population_setting(grids: Sequence[Sequence[tuple[Setting, int, float]]]) -> tuple[int, Setting]:
    """The population default: the candidate whose summed validation hits over all users (ties:
    lower summed log-loss, then the earliest) are the best. ``grids`` are :func:`grid_scores`
    of every user over one config, so their candidates line up.

    Returns:
        The candidate's index in the grids and its setting (``lam``, ``k`` and
        ``relative_temperature`` are what every user shares; :func:`setting_for` makes it
        concrete for one user).

    Raises:
        DataError: no user, or grids of different configs.
    """
    if not grids or len({len(g) for g in grids}) != 1:
        raise DataError("population_setting: give every user's grid_scores over one MemoryConfig")
    totals = [(sum(g[i][1] for g in grids), -sum(g[i][2] for g in grids)) for i in range(len(grids[0]))]
    best = max(range(len(totals)), key=lambda i: totals[i])
    return best, grids[0][best][0]


def setting_for(store: Datastore, val: Encoded, shared: Setting) -> Setting:
    """A population setting made concrete for one user (their own temperature unit)."""
    unit = _scale(store.search(val.keys, 1)[0]) if len(val) else 1.0
    return Setting(shared.lam, shared.k, shared.relative_temperature * unit, shared.relative_temperature)


@dataclass(frozen=True)
class Memory:
    """One user's personalized predictor: their datastore and their setting."""

    store: Datastore
    setting: Setting

    @property
    def nbytes(self) -> int:
        """Bytes on the device: the datastore (nothing when the user keeps the global model)
        plus the three numbers of the setting."""
        return (self.store.nbytes if self.setting.lam > 0 else 0) + 12

    def log_probs(self, enc: Encoded) -> torch.Tensor:
        """The mixture's log-probabilities of encoded queries (their ``log_probs`` are the
        global model's)."""
        s = self.setting
        if s.lam <= 0:
            return enc.log_probs
        dist, lab = self.store.search(enc.keys, s.k)
        return mix_log_probs(enc.log_probs, knn_log_probs(dist, lab, s.k, s.temperature, self.store.num_classes), s.lam)

    def accuracy(self, enc: Encoded) -> float:
        """Top-1 accuracy on encoded examples."""
        return float((self.log_probs(enc).argmax(-1) == enc.labels).float().mean()) if len(enc) else 0.0


def personalize_memory(
    train: Encoded, val: Encoded, num_classes: int, config: MemoryConfig = MemoryConfig()
) -> tuple[Memory, list[tuple[Setting, int, float]]]:
    """kNN-Per for one user: a datastore of their training examples, the setting chosen on their
    validation split, then (``add_validation``) the validation examples added.

    Returns:
        The memory and the validation grid (for :func:`population_setting`).
    """
    store = build_datastore(train, num_classes, config)
    grid = grid_scores(store, val, config)
    setting = _pick(grid, len(val), config.select_by)
    if config.add_validation and len(val):
        store = store.extend(val)
    return Memory(store, setting), grid


@dataclass(frozen=True)
class MemoryModel:
    """The global model with one user's memory, as a predictor (the keyboard's
    :func:`~interlearn.keyboard.suggest.suggest_words` takes it in place of params).

    Attributes:
        params: the global model's params.
        memory: the user's memory.
        config: where the representation comes from (as the memory was built).
    """

    params: Params
    memory: Memory
    config: MemoryConfig

    @torch.no_grad()
    def probs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Mixture probabilities: (B, C, T) for a sequence model (the layout of its logits), else (B, C)."""
        seq = x.dim() == 2 and not x.is_floating_point()
        dummy = torch.zeros(x.shape[:2] if seq else x.shape[:1], dtype=torch.long)
        enc = encode(model, self.params, TensorData(x, dummy), replace(self.config, ignore_labels=()))
        p = self.memory.log_probs(enc).exp()
        return p.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2) if seq else p


@dataclass(frozen=True)
class MemoryUpdate:
    """A client update that also keeps a local memory, never sent.

    Runs ``inner`` (e.g. :class:`~interlearn.federated.client.LocalSGD`) unchanged and uploads
    exactly its result; then encodes the client's own examples with the global model it
    received and keeps the datastore as the client's private state (``memory/keys``,
    ``memory/labels``), which the simulator stores with the client and never aggregates.

    Attributes:
        inner: the wrapped client update.
        model_config: where the representation comes from.
    """

    inner: Any
    model_config: MemoryConfig = MemoryConfig()

    def __call__(
        self,
        model: nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        result, state = self.inner(model, params, data, client_state, server_extras, generator)
        enc = encode(model, params, TensorData(data.x, data.y), self.model_config)
        store = build_datastore(enc, enc.log_probs.shape[-1], self.model_config)
        return result, {**(state or {}), "memory/keys": store.keys, "memory/labels": store.labels}
