"""Secure aggregation with the clients on other machines: the protocol's rounds as messages.

In simulation (:func:`~interlearn.federated.protections.secagg.protocol.secure_sum`) every party is an
object in one process. With real devices (Flower SuperNodes) each protocol round is one message
to every client still in the protocol, and each device keeps its :class:`SecAggClient` state
between messages in its own storage; the server side is the same :class:`SecAggServer`.

* :func:`remote_secure_sum` is the server side, over a :data:`Channel`: ``channel(stage,
  {client: payload}) -> {client: reply}`` delivers one message per client and returns the replies
  of those that answered (a silent client is a dropout, handled by the protocol's thresholds).
* :func:`device_message` is the device side of one message.

Payloads and replies are JSON-serializable dicts (bytes as hex); the masked input travels as an
int64 tensor under ``reply["masked"]``. The device's plaintext input (written by
:class:`~interlearn.federated.protections.secagg.SecureAggregation`'s client hook into the client's memory
under :data:`INPUT_KEY`) never leaves it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.protections.secagg.graph import Graph
from interlearn.federated.protections.secagg.protocol import SHARE_BYTES, SecAggClient, SecAggServer, Transcript
from interlearn.federated.protections.secagg.ring import Ring
from interlearn.types import ClientId, Params

__all__ = ["Channel", "INPUT_KEY", "STAGES", "remote_secure_sum", "device_message"]

INPUT_KEY = "secagg/input"
"""Key of the device's (weighted, flattened) plaintext input in its step memory."""

STAGES = ("advertise", "share", "mask", "unmask")

Channel = Callable[[str, dict[ClientId, dict[str, Any]]], dict[ClientId, dict[str, Any]]]


def remote_secure_sum(
    channel: Channel,
    ids: Sequence[ClientId],
    ring: Ring,
    threshold: int,
    length: int,
    summands: int,
    graph: Graph | None = None,
) -> tuple[torch.Tensor, Transcript]:
    """The server side of the protocol over ``channel``; the ring sum of the survivors' inputs.
    With a ``graph`` (SecAgg+) every client hears only of its neighbourhood.

    Raises:
        RoundSkipped: fewer than ``threshold`` clients at some stage (no sum is produced).
    """
    tr = Transcript()
    server = SecAggServer(ring, threshold, length, graph)
    setup = {"bits": ring.bits, "frac_bits": ring.frac_bits, "summands": summands, "length": length}
    replies = channel("advertise", {c: dict(setup) for c in ids})
    keys = {c: (bytes.fromhex(r["c"]), bytes.fromhex(r["s"])) for c, r in replies.items()}
    for c in keys:
        tr.up(c, 64)
    roster = server.collect_keys(keys)

    def wire_roster(c: ClientId) -> list[list[Any]]:
        return [[int(v), ck.hex(), sk.hex()] for v, (ck, sk) in sorted(server.roster_for(c).items())]

    replies = channel("share", {c: {"roster": wire_roster(c), "threshold": threshold} for c in roster})
    sent = {c: {int(v): bytes.fromhex(ct) for v, ct in r["shares"]} for c, r in replies.items()}
    for c in roster:
        tr.down(c, 72 * len(server.roster_for(c)))
    for c, cts in sent.items():
        tr.up(c, sum(len(ct) for ct in cts.values()))
    masked = _remote_masking(channel, server, server.route_shares(sent), tr)
    u3 = server.collect_masked(masked)
    replies = channel(
        "unmask",
        {c: {"u2": server.restrict(c, server.u2), "u3": server.restrict(c, u3), "threshold": threshold} for c in u3},
    )
    shares = {c: {int(v): (int(x), int(y)) for v, x, y in r["shares"]} for c, r in replies.items()}
    for c in u3:
        tr.down(c, 8 * len(server.restrict(c, u3)))
    for c, s in shares.items():
        tr.up(c, SHARE_BYTES * len(s))
    total = server.unmask(shares)
    tr.survivors = list(u3)
    tr.dropped = [v for v in server.u2 if v not in masked]
    return total, tr


def _remote_masking(
    channel: Channel, server: SecAggServer, inbox: dict[ClientId, dict[ClientId, bytes]], tr: Transcript
) -> dict[ClientId, torch.Tensor]:
    """The masking stage over ``channel``: each client's shares in, its masked input (int64) out."""
    length, ring = server.length, server.ring
    payloads: dict[ClientId, dict[str, Any]] = {
        c: {"u2": server.restrict(c, server.u2), "inbox": [[int(u), ct.hex()] for u, ct in inbox[c].items()]}
        for c in server.u2
    }
    for c in server.u2:
        tr.down(c, sum(len(ct) for ct in inbox[c].values()) + 8 * len(payloads[c]["u2"]))
    replies = channel("mask", payloads)
    masked = {}
    for c, r in replies.items():
        y = r["masked"]
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.numel() != length:
            continue  # a malformed masked input counts as a dropout; its masks are removed
        masked[c] = y.reshape(-1)
        tr.up(c, length * ring.bytes_per_element)
    return masked


def device_message(
    stage: str, payload: dict[str, Any], client_id: ClientId, memory: Params, state: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Handle one protocol message on the device.

    Args:
        stage: one of :data:`STAGES`.
        payload: the server's message.
        client_id: this device's client id.
        memory: the device's step memory; ``advertise`` takes the input out of it (in place).
        state: the :meth:`SecAggClient.to_state` kept since the previous message (``None`` first).

    Returns:
        ``(reply, new_state)``; ``new_state`` is ``None`` once the protocol is over.

    Raises:
        ConfigError: unknown stage, or no input in memory (the train message's client hooks
            did not include ``SecureAggregation``), or a message out of order.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown secure-aggregation stage {stage!r}; expected one of {STAGES}")
    if stage == "advertise":
        vec = memory.pop(INPUT_KEY, None)
        if vec is None:
            raise ConfigError(
                f"client {client_id} holds no secure-aggregation input this round: the job's steps must end with SecureAggregation on both sides"
            )
        ring = Ring(int(payload["bits"]), int(payload["frac_bits"]))
        if vec.numel() != int(payload["length"]):
            raise ConfigError(
                f"client {client_id}: input has {vec.numel()} values, the server expects {payload['length']}"
            )
        client = SecAggClient(client_id, ring.encode(vec, summands=int(payload["summands"])).reshape(-1), ring)
        c, s = client.advertise_keys()
        return {"c": c.hex(), "s": s.hex()}, client.to_state()
    if state is None:
        raise ConfigError(f"client {client_id}: secure-aggregation message {stage!r} before 'advertise'")
    client = SecAggClient.from_state(state)
    if stage == "share":
        roster = {int(v): (bytes.fromhex(ck), bytes.fromhex(sk)) for v, ck, sk in payload["roster"]}
        out = client.share_keys(roster, int(payload["threshold"]))
        return {"shares": [[int(v), ct.hex()] for v, ct in out.items()]}, client.to_state()
    if stage == "mask":
        inbox = {int(u): bytes.fromhex(ct) for u, ct in payload["inbox"]}
        y = client.masked_input([int(v) for v in payload["u2"]], inbox)
        return {"masked": y}, client.to_state()
    try:
        shares = client.unmask(
            [int(v) for v in payload["u2"]], [int(v) for v in payload["u3"]], int(payload["threshold"])
        )
    except RoundSkipped:
        return {"shares": []}, None
    return {"shares": [[int(v), x, y] for v, (x, y) in shares.items()]}, None
