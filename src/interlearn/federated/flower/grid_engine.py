"""The server side's engine: a cohort's client updates sent to Flower SuperNodes through a ``Grid``.

``FlowerGridEngine`` implements our ``Engine`` protocol on top of Flower's Message API
(``Grid.send_and_receive``), so the round loop, the strategy and the server-side update steps
that run in-process run unchanged inside a ``ServerApp``. Each client of the cohort is the node
that reported that client id; it gets a ``train`` message with the global params, the server
extras and its generator state, and replies with its ``ClientResult``.

The nodes also run the update steps' client hooks (clipping, local noise, compression):
``runs_client_steps = True`` tells the round loop to send each step's state with the ``train``
message (a :class:`~interlearn.federated.client.hooks.ClientRound`) instead of running the hooks
itself, so what leaves a node is already clipped, noised or compressed; the notes the hooks
write come back with the reply (``CohortOutcome.client_contexts``).

A node that does not answer within ``timeout_s`` (killed, disconnected, too slow) or replies
with an error is a *dropout*: it is left out of the results and listed in the outcome's
``dropped``, and the run continues with the survivors.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from interlearn.errors import ConfigError, RoundSkipped, UpdateRejected
from interlearn.federated.api import ClientData, CohortOutcome, CohortTask
from interlearn.federated.client.hooks import context_from_json
from interlearn.federated.engines.base import EngineBase, check_task
from interlearn.federated.flower.codec import (
    as_float,
    as_int,
    config_record,
    content_to_result,
    generator_to_record,
    params_to_record,
    record_to_generator,
    record_to_params,
)
from interlearn.types import ClientId, Params

__all__ = ["FlowerGridEngine", "RemotePopulation", "discover_clients"]

log = logging.getLogger(__name__)


def discover_clients(
    grid: Grid, min_nodes: int, timeout_s: float = 60.0, poll_s: float = 0.5
) -> tuple[dict[ClientId, int], dict[ClientId, int]]:
    """Wait for ``min_nodes`` SuperNodes, ask each which client it is and how many examples it has.

    Returns:
        ``(node_of, num_examples)``: client id -> Flower node id, client id -> example count.

    Raises:
        RoundSkipped: fewer than ``min_nodes`` nodes connected or answered within ``timeout_s``.
        ConfigError: two nodes claim the same client id (check their ``--node-config``).
    """
    deadline = time.monotonic() + timeout_s
    nodes: list[int] = []
    while time.monotonic() < deadline:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= min_nodes:
            break
        time.sleep(poll_s)
    if len(nodes) < min_nodes:
        raise RoundSkipped(f"only {len(nodes)} of {min_nodes} SuperNodes connected within {timeout_s}s")
    msgs = [Message(RecordDict(), dst_node_id=n, message_type="query", group_id="discover") for n in nodes]
    replies = list(grid.send_and_receive(msgs, timeout=max(deadline - time.monotonic(), 1.0)))
    node_of: dict[ClientId, int] = {}
    sizes: dict[ClientId, int] = {}
    for reply in replies:
        if reply.has_error():
            log.warning("node %s failed the discovery query: %s", reply.metadata.src_node_id, reply.error.reason)
            continue
        meta = reply.content["meta"]
        cid = as_int(meta["client-id"])
        if cid in node_of:
            raise ConfigError(
                f"nodes {node_of[cid]} and {reply.metadata.src_node_id} both claim client id {cid}: "
                "give each flower-supernode its own partition in --node-config"
            )
        node_of[cid] = int(reply.metadata.src_node_id)
        sizes[cid] = as_int(meta["num-examples"])
    if len(node_of) < min_nodes:
        raise RoundSkipped(f"only {len(node_of)} of {min_nodes} SuperNodes answered the discovery query")
    return node_of, sizes


class RemotePopulation:
    """The server's view of a deployed population: client ids and example counts, no examples.

    It stands in for :class:`~interlearn.federated.population.Population` in the round loop:
    ``len()`` drives cohort sampling exactly as in simulation, and ``client(cid)`` returns an
    empty ``ClientData`` carrying only the id (the engine addresses the node by it; per-client
    evaluation skips empty clients, and :meth:`FlowerGridEngine.client_accuracies` asks the
    nodes instead).

    Raises:
        ConfigError: the client ids are not exactly ``0..n-1``.
    """

    def __init__(self, sizes: dict[ClientId, int]) -> None:
        ids = sorted(sizes)
        if ids != list(range(len(ids))):
            raise ConfigError(
                f"client ids {ids} must be 0..{len(ids) - 1}: give the SuperNodes partition-id 0..N-1 in --node-config"
            )
        self._sizes = dict(sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def sizes(self) -> torch.Tensor:
        """Examples per client, as reported by the nodes."""
        return torch.tensor([self._sizes[c] for c in range(len(self))], dtype=torch.long)

    def client(self, cid: ClientId) -> ClientData:
        if cid not in self._sizes:
            raise ConfigError(f"client id {cid} out of range: {len(self)} clients are connected")
        return ClientData(cid, torch.empty(0), torch.empty(0))

    def __repr__(self) -> str:
        return f"RemotePopulation(clients={len(self)}, examples={sum(self._sizes.values())})"


class FlowerGridEngine(EngineBase):
    """Our ``Engine`` over a Flower ``Grid`` (see the module docstring).

    Args:
        grid: the ``Grid`` handed to the ``ServerApp``'s main function.
        node_of: client id -> Flower node id (from :func:`discover_clients`).
        timeout_s: seconds to wait for a cohort's replies; later ones are dropouts.
    """

    name = "flower"
    runs_client_steps = True

    def __init__(self, grid: Grid, node_of: dict[ClientId, int], timeout_s: float = 120.0) -> None:
        super().__init__()
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s={timeout_s}: must be > 0")
        self.grid = grid
        self.node_of = dict(node_of)
        self.timeout_s = timeout_s
        self._round = 0

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        """Send one ``train`` message per client of the task and collect the replies.

        With ``task.client_round`` the nodes run the update steps' client hooks on their result
        (with the step states it carries) before replying; each reply's notes and log land in
        the outcome's ``client_contexts``. The server's model, client update and client states
        stay unused: each node has its own model, client update, data and private state.
        Returns survivors in cohort order with ``None`` states (the states live on the nodes).

        Raises:
            ConfigError: a client of the cohort has no node.
        """
        check_task(task)
        unknown = [c for c in task.clients if c not in self.node_of]
        if unknown:
            raise ConfigError(f"clients {unknown} have no SuperNode; known clients: {sorted(self.node_of)}")
        self._round += 1
        group = f"round-{self._round}"
        params_rec = params_to_record(task.params)
        extras_rec = params_to_record(task.server_extras)
        msgs = []
        for cid, gen in zip(task.clients, task.generators):
            content = RecordDict(
                {
                    "params": params_rec,
                    "extras": extras_rec,
                    "generator": generator_to_record(gen),
                    "config": config_record(round=self._round, client_id=int(cid)),
                }
            )
            if task.client_round is not None:
                content["client-round"] = config_record(json=task.client_round.to_json())
            msgs.append(Message(content, dst_node_id=self.node_of[cid], message_type="train", group_id=group))
        replies = list(self.grid.send_and_receive(msgs, timeout=self.timeout_s))
        by_node: dict[int, Message] = {int(r.metadata.src_node_id): r for r in replies}
        outcome = CohortOutcome([])
        for cid, gen in zip(task.clients, task.generators):
            reply = by_node.get(self.node_of[cid])
            if reply is None or reply.has_error():
                why = "no reply" if reply is None else f"error: {reply.error.reason}"
                log.warning("client %s (%s): counted as a dropout", cid, why)
                outcome.dropped.append(cid)
                continue
            result = content_to_result(reply.content)
            if result.client_id != cid:
                raise UpdateRejected(f"node {self.node_of[cid]} answered as client {result.client_id}, expected {cid}")
            gen.set_state(record_to_generator(reply.content["generator"]).get_state())
            if task.client_round is not None:
                if "client-context" not in reply.content:
                    raise UpdateRejected(
                        f"node {self.node_of[cid]} did not run the update steps' client hooks: "
                        "is it running interlearn's ClientApp with the job's steps?"
                    )
                outcome.client_contexts[cid] = context_from_json(str(reply.content["client-context"]["json"]))
            outcome.results.append((result, None))
        return outcome

    def protocol_channel(
        self, round_: int
    ) -> Callable[[str, dict[ClientId, dict[str, Any]]], dict[ClientId, dict[str, Any]]]:
        """A channel for the round's extra protocol messages (secure aggregation): ``channel(stage,
        {client: payload})`` sends one ``query.secagg`` message per client and returns the replies
        that came back within ``timeout_s`` without error (the rest are dropouts)."""

        def channel(stage: str, payloads: dict[ClientId, dict[str, Any]]) -> dict[ClientId, dict[str, Any]]:
            msgs = []
            for cid, payload in payloads.items():
                body = ConfigRecord({"json": json.dumps({"stage": stage, **payload})})
                msgs.append(
                    Message(
                        RecordDict({"secagg": body}),
                        dst_node_id=self.node_of[cid],
                        message_type="query.secagg",
                        group_id=f"round-{round_}-secagg-{stage}",
                    )
                )
            client_of = {n: c for c, n in self.node_of.items()}
            out: dict[ClientId, dict[str, Any]] = {}
            for reply in self.grid.send_and_receive(msgs, timeout=self.timeout_s):
                sender = client_of.get(int(reply.metadata.src_node_id))
                if sender is None or reply.has_error():
                    why = "unknown node" if sender is None else reply.error.reason
                    log.warning("secure aggregation %s: node %s dropped (%s)", stage, reply.metadata.src_node_id, why)
                    continue
                answer = json.loads(str(reply.content["secagg"]["json"]))
                if "masked" in reply.content:
                    answer["masked"] = record_to_params(reply.content["masked"])["y"]
                out[sender] = answer
            return out

        return channel

    def client_accuracies(
        self, model: torch.nn.Module, params: Params, population: object, clients: Sequence[ClientId] | None = None
    ) -> dict[ClientId, float]:
        """Each node evaluates ``params`` on its own data; only the accuracy comes back.

        Nodes that do not answer within ``timeout_s`` are left out.
        """
        ids = sorted(self.node_of) if clients is None else list(clients)
        rec = params_to_record(params)
        msgs = [
            Message(
                RecordDict({"params": rec}), dst_node_id=self.node_of[c], message_type="evaluate", group_id="evaluate"
            )
            for c in ids
        ]
        out: dict[ClientId, float] = {}
        for reply in self.grid.send_and_receive(msgs, timeout=self.timeout_s):
            if reply.has_error():
                continue
            m = reply.content["metrics"]
            if as_int(m["num-examples"]) > 0:
                out[as_int(m["client-id"])] = as_float(m["accuracy"])
        return dict(sorted(out.items()))
