"""The client side of the update steps: one context per client, run where the client runs.

An update step's ``client`` hook (clipping, local noise, compression, a simulated attack) belongs
to the client: in simulation the round loop runs it right after the engine returns; with an
engine whose clients are real devices (Flower SuperNodes) the device runs it before anything
leaves it. Both paths use the functions here, so they compute the same thing:

* every client gets its own :class:`~interlearn.federated.api.RoundContext`
  (:func:`client_context`): a generator determined by ``(seed, round, client)`` only, so a
  client's noise or stochastic rounding does not depend on which other clients ran before it or
  where; and the client's ``memory`` (per-client step state that lives on the device, such as
  the error-feedback residual of compression), kept across rounds by whoever holds the client;
* the server sends the steps' ``state_dict()`` (e.g. the adaptive clip norm of this round) in a
  :class:`ClientRound`; the device loads it into its own copies of the steps
  (:func:`load_step_states`) before running the hooks;
* what the hooks write to the client's ``notes`` and ``log`` comes back and is merged into the
  round's context (:func:`merge_client_context`): numbers are summed over the cohort (byte
  counts, attack counts), lists are concatenated, anything else is the last client's value.

A step whose protocol needs more messages than the round's one (secure aggregation) declares
``needs_channel = True``; it runs on an engine with remote clients only if that engine offers a
``protocol_channel(round)``, and is refused by name otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.server.sampling import step_generator
from interlearn.types import ClientId, Params

__all__ = [
    "ClientRound",
    "client_context",
    "apply_client_steps",
    "merge_client_context",
    "load_step_states",
    "step_states",
    "check_remote_steps",
    "context_to_json",
    "context_from_json",
]


@dataclass(frozen=True)
class ClientRound:
    """What a remote client needs to run the steps' client hooks itself.

    Attributes:
        round: the round index.
        seed: the run's seed (with round and client id it fixes the client's step generator).
        states: each step's ``state_dict()`` (``None`` for steps without one), in step order.
    """

    round: int
    seed: int
    states: list[Any] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"round": self.round, "seed": self.seed, "states": self.states})

    @classmethod
    def from_json(cls, text: str) -> ClientRound:
        d = json.loads(text)
        return cls(int(d["round"]), int(d["seed"]), list(d["states"]))


def step_states(steps: Sequence[UpdateStep]) -> list[Any]:
    """Each step's ``state_dict()`` or ``None``, in order (JSON-serializable)."""
    return [s.state_dict() for s in steps]


def load_step_states(steps: Sequence[UpdateStep], states: Sequence[Any]) -> None:
    """Load the server's step states into this side's copies of the steps.

    Raises:
        ConfigError: the two sides built different step lists.
    """
    if len(states) != len(steps):
        raise ConfigError(
            f"the server runs {len(states)} update step(s), this client built {len(steps)} "
            f"({[s.name for s in steps]}): build the same steps on both sides (FlowerJob.steps_fn)"
        )
    for step, st in zip(steps, states):
        if st is not None:
            step.load_state_dict(st)


def client_context(
    round_: int, seed: int, client_id: ClientId, memory: Params | None = None, on_device: bool = False
) -> RoundContext:
    """The context a client's hooks see: its own generator and memory, fresh notes and log
    (``on_device``: the hooks run on a real remote device)."""
    return RoundContext(round_, step_generator(seed, round_, client_id), memory=dict(memory or {}), on_device=on_device)


def apply_client_steps(steps: Sequence[UpdateStep], result: ClientResult, ctx: RoundContext) -> ClientResult:
    """Run the steps' client hooks in order on one client's result."""
    for step in steps:
        result = step.client(result, ctx)
    return result


def merge_client_context(round_ctx: RoundContext, notes: dict[str, Any], log: Sequence[str]) -> None:
    """Fold one client's notes and log lines into the round's context (see the module docstring)."""
    round_ctx.log.extend(log)
    for k, v in notes.items():
        old = round_ctx.notes.get(k)
        if (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and isinstance(old, (int, float))
            and not isinstance(old, bool)
        ):
            round_ctx.notes[k] = old + v
        elif isinstance(v, list) and isinstance(old, list):
            round_ctx.notes[k] = [*old, *v]
        else:
            round_ctx.notes[k] = v


def context_to_json(ctx: RoundContext) -> str:
    """A client context's notes (JSON-serializable values only) and log, for the reply."""
    notes = {k: v for k, v in ctx.notes.items() if isinstance(v, (int, float, str, bool, list))}
    return json.dumps({"notes": notes, "log": list(ctx.log)})


def context_from_json(text: str) -> tuple[dict[str, Any], list[str]]:
    """Inverse of :func:`context_to_json`: ``(notes, log)``."""
    d = json.loads(text)
    return dict(d.get("notes", {})), [str(s) for s in d.get("log", [])]


def check_remote_steps(steps: Sequence[UpdateStep], engine: Any) -> None:
    """Refuse steps whose protocol the engine cannot carry to its remote clients.

    Raises:
        ConfigError: a step has ``needs_channel = True`` and the engine offers no
            ``protocol_channel``; the message names both.
    """
    bad = [s.name for s in steps if s.needs_channel]
    if bad and engine.protocol_channel(0) is None:
        raise ConfigError(
            f"update step(s) {bad} need extra protocol messages to the clients, which the {engine.name!r} engine "
            "cannot send (it has no protocol_channel); remove them from the steps or use an in-process "
            "engine (sequential, vectorized, multicore, ray) or the Flower engine"
        )
