"""The node side: a Flower ``ClientApp`` that runs our ``ClientUpdate`` on the node's own data.

Three message types are handled (Flower's Message API, ``flwr.clientapp.ClientApp``):

* ``query``: the node reports which client it is (``client-id``) and how many examples it holds,
  so the server can address clients by our ids. Raw data never leaves the node.
* ``train``: the message carries the global params, the server extras and the state of the
  generator the in-process engines would hand this client; the node runs the client update,
  keeps its private client state (SCAFFOLD's control variate, ...) in ``context.state`` (Flower
  keeps it on the node across rounds) and replies with the result and the advanced generator.
  When the message carries a ``client-round`` record, the node then runs the update steps'
  client hooks itself (clip, local noise, compress; with the server's step states loaded into
  its own copies of the steps and its step memory kept in ``context.state``), so the update is
  protected before it leaves the node.
* ``query.secagg``: one message of the secure-aggregation protocol (advertise keys, share keys,
  masked input, unmasking; see :mod:`interlearn.federated.protections.secagg.remote`); the node's protocol
  state (private keys, shares) stays in ``context.state`` between messages.
* ``evaluate``: the node scores the given params on its own data; only accuracy and loss leave.

What the node runs comes from ``build(context) -> ClientSetup``, written by the user in their
Flower app module; ``context.node_config`` (``flower-supernode --node-config``) tells the node
which partition or data path is its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientUpdate, UpdateStep
from interlearn.federated.client.hooks import (
    ClientRound,
    apply_client_steps,
    client_context,
    context_to_json,
    load_step_states,
)
from interlearn.federated.flower.codec import (
    generator_to_record,
    params_to_record,
    record_to_generator,
    record_to_params,
    result_to_content,
)
from interlearn.federated.protections.secagg.remote import device_message
from interlearn.federated.server.evaluate import evaluate_params
from interlearn.types import Params

__all__ = ["ClientSetup", "make_client_app", "STATE_KEY", "MEMORY_KEY"]

STATE_KEY = "interlearn-client-state"
"""Key of the ``ArrayRecord`` in ``context.state`` holding the node's persistent client state."""

MEMORY_KEY = "interlearn-step-memory"
"""Key of the ``ArrayRecord`` in ``context.state`` holding the update steps' memory on this node."""

SECAGG_KEY = "interlearn-secagg"
"""Key of the ``ConfigRecord`` in ``context.state`` holding this node's secure-aggregation state
between the protocol's messages (its private keys and shares: it never leaves the node)."""


@dataclass
class ClientSetup:
    """What one node needs: a model to train, the client update and the node's own data.

    Attributes:
        model: a module of the federation's architecture (its weights are overwritten by the
            global params each round).
        client_update: the local training (same object as in simulation).
        data: this node's examples; ``data.client_id`` is the client id the server addresses.
        steps: the job's update steps (same list as the server's); their client hooks run here.
    """

    model: torch.nn.Module
    client_update: ClientUpdate
    data: ClientData
    steps: Sequence[UpdateStep] = field(default_factory=tuple)


def _memory(context: Context) -> Params:
    """The update steps' memory kept on this node (empty before the first protected round)."""
    record = context.state.get(MEMORY_KEY)
    return record_to_params(record) if isinstance(record, ArrayRecord) else {}


def make_client_app(build: Callable[[Context], ClientSetup]) -> ClientApp:
    """A Flower ``ClientApp`` running ``build(context)``'s client update.

    Args:
        build: called in the ClientApp process with Flower's ``Context``; returns the node's
            :class:`ClientSetup`. Flower may start a fresh process per message, so ``build``
            should be cheap or cache what it loads.

    Returns:
        The ``ClientApp``; reference it from ``[tool.flwr.app.components] clientapp``.
    """
    app = ClientApp()

    def _setup(context: Context) -> ClientSetup:
        setup = build(context)
        if not isinstance(setup, ClientSetup):
            raise ConfigError(f"the client build function returned {type(setup).__name__}, expected ClientSetup")
        return setup

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        setup = _setup(context)
        meta = MetricRecord({"client-id": int(setup.data.client_id), "num-examples": len(setup.data)})
        return Message(RecordDict({"meta": meta}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        return _train_reply(_setup(context), msg, context)

    @app.query("secagg")
    def secagg(msg: Message, context: Context) -> Message:
        """One secure-aggregation protocol message; the protocol state stays in ``context.state``."""
        return _secagg_reply(_setup(context), msg, context)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        return _evaluate_reply(_setup(context), msg)

    return app


def _train_reply(setup: ClientSetup, msg: Message, context: Context) -> Message:
    """Run the client update on the server's parameters; protect it here when the round has client steps."""
    params = record_to_params(msg.content["params"])
    extras = record_to_params(msg.content["extras"])
    generator = record_to_generator(msg.content["generator"])
    state_record = context.state.get(STATE_KEY)
    client_state = record_to_params(state_record) if isinstance(state_record, ArrayRecord) else None
    result, new_state = setup.client_update(setup.model, params, setup.data, client_state, extras, generator)
    if new_state is not None:
        context.state[STATE_KEY] = params_to_record(new_state)
    notes: ConfigRecord | None = None
    if "client-round" in msg.content:  # protect the update here, before it leaves the node
        info = ClientRound.from_json(str(msg.content["client-round"]["json"]))
        load_step_states(setup.steps, info.states)
        ctx = client_context(info.round, info.seed, result.client_id, _memory(context), on_device=True)
        result = apply_client_steps(setup.steps, result, ctx)
        context.state[MEMORY_KEY] = params_to_record(ctx.memory)
        notes = ConfigRecord({"json": context_to_json(ctx)})
    content = result_to_content(result)
    content["generator"] = generator_to_record(generator)
    if notes is not None:
        content["client-context"] = notes
    return Message(content, reply_to=msg)


def _secagg_reply(setup: ClientSetup, msg: Message, context: Context) -> Message:
    """Answer one secure-aggregation stage, keeping the protocol state in ``context.state``."""
    payload = json.loads(str(msg.content["secagg"]["json"]))
    memory = _memory(context)
    old = context.state.get(SECAGG_KEY)
    state = json.loads(str(old["json"])) if isinstance(old, ConfigRecord) and old.get("json") else None
    reply, new_state = device_message(payload["stage"], payload, setup.data.client_id, memory, state)
    context.state[MEMORY_KEY] = params_to_record(memory)
    context.state[SECAGG_KEY] = ConfigRecord({"json": json.dumps(new_state) if new_state is not None else ""})
    masked = reply.pop("masked", None)
    content = RecordDict({"secagg": ConfigRecord({"json": json.dumps(reply)})})
    if masked is not None:
        content["masked"] = ArrayRecord({"y": masked}, keep_input=True)
    return Message(content, reply_to=msg)


def _evaluate_reply(setup: ClientSetup, msg: Message) -> Message:
    """The node's accuracy and loss with the server's parameters (zeros without data)."""
    n = len(setup.data)
    ev = evaluate_params(setup.model, record_to_params(msg.content["params"]), setup.data.x, setup.data.y) if n else {}
    metrics = MetricRecord(
        {
            "client-id": int(setup.data.client_id),
            "num-examples": n,
            "accuracy": float(ev.get("accuracy", 0.0)),
            "loss": float(ev.get("loss", 0.0)),
        }
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
