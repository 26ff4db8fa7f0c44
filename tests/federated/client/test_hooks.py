"""Client hooks run where the client runs: per-client contexts, step states sent to remote
clients, step memory kept by the client (and in checkpoints), refused in-process-only steps."""

from __future__ import annotations

import json

import pytest
import torch
from fl_helpers import KillAt, blobs, tiny_mlp

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.api import RoundContext
from interlearn.federated.client.hooks import (
    ClientRound,
    apply_client_steps,
    client_context,
    context_to_json,
    load_step_states,
    merge_client_context,
)
from interlearn.federated.engines import SequentialEngine
from interlearn.federated.partition import shards
from interlearn.federated.protections.compression import CompressUpdates
from interlearn.federated.protections.privacy import ClipUpdates, GaussianNoise
from interlearn.federated.protections.secagg import SecureAggregation
from interlearn.federated.protections.secagg.remote import INPUT_KEY, device_message


def _population():
    x, y = blobs(120, seed=0)
    return Population(x, y, shards(y, 8, 2, seed=0)), (x, y)


def _steps():
    clip = ClipUpdates(0.5, adaptive=True, learning_rate=0.5)
    return [clip, GaussianNoise(clip, 0.3, mode="local"), CompressUpdates("topk", ratio=0.3)]


def _secagg_steps(neighbours="all"):
    return [ClipUpdates(1.0), SecureAggregation(threshold=2, neighbours=neighbours)]


class FakeNodes(SequentialEngine):
    """Clients that run the client hooks themselves, as Flower nodes do: their own copies of the
    steps (rebuilt per message), the server's step states loaded first, memory kept per node,
    and only JSON notes going back; ``protocol_channel`` carries secure aggregation's rounds
    through JSON, like the Flower engine's messages."""

    name = "fake-nodes"
    runs_client_steps = True

    def __init__(self, steps_fn=_steps, silent_from_stage=None) -> None:
        super().__init__(warmup=False)
        self.steps_fn = steps_fn
        self.node_memory: dict[int, dict] = {}
        self.node_secagg: dict[int, dict | None] = {}
        self.rounds_seen: list[ClientRound] = []
        self.silent = silent_from_stage  # (client, stage): that client stops answering there

    def protocol_channel(self, round_):
        def channel(stage, payloads):
            out = {}
            for cid, payload in payloads.items():
                if self.silent is not None and self.silent == (cid, stage):
                    continue
                wire = json.loads(json.dumps({"stage": stage, **payload}))
                mem = self.node_memory.setdefault(cid, {})
                reply, self.node_secagg[cid] = device_message(stage, wire, cid, mem, self.node_secagg.get(cid))
                masked = reply.pop("masked", None)
                reply = json.loads(json.dumps(reply))
                if masked is not None:
                    reply["masked"] = masked
                out[cid] = reply
            return out

        return channel

    def run_cohort(self, task):
        client_round = task.client_round
        assert client_round is not None, "the round loop must send the step states"
        self.rounds_seen.append(client_round)
        outcome = super().run_cohort(task)
        done = []
        for res, st in outcome.results:
            steps = self.steps_fn()  # the node's own objects
            load_step_states(steps, json.loads(client_round.to_json())["states"])
            ctx = client_context(
                client_round.round,
                client_round.seed,
                res.client_id,
                self.node_memory.get(res.client_id),
                on_device=True,
            )
            res = apply_client_steps(steps, res, ctx)
            self.node_memory[res.client_id] = ctx.memory
            notes = json.loads(context_to_json(ctx))
            outcome.client_contexts[res.client_id] = (notes["notes"], notes["log"])
            done.append((res, st))
        outcome.results = done
        return outcome


def test_remote_clients_running_the_hooks_equal_the_in_process_run():
    pop, (x, y) = _population()
    cfg = SimulationConfig(rounds=4, clients_per_round=4, seed=3, progress=False)
    cu = LocalSGD(epochs=1, batch_size=8, lr=0.1)
    local_steps = _steps()
    ref = simulate(
        tiny_mlp(), pop, cu, get_strategy("fedavg"), cfg, engine="sequential", steps=local_steps, test=(x, y)
    )
    nodes = FakeNodes()
    remote_steps = _steps()  # the server's copies: only server/after hooks run on them
    got = simulate(tiny_mlp(), pop, cu, get_strategy("fedavg"), cfg, engine=nodes, steps=remote_steps, test=(x, y))
    for k in ref.params:
        assert torch.equal(ref.params[k], got.params[k]), k
    # the adaptive clip norm moved and reached the nodes every round
    norms = [r.states[0]["clip_norm"] for r in nodes.rounds_seen]
    assert len(set(norms)) > 1 and norms[0] == 0.5
    assert remote_steps[0].clip_norm == local_steps[0].clip_norm
    # compression's notes came back from the nodes and were summed over the cohort
    for a, b in zip(ref.history, got.history):
        assert a["compress/bytes_up"] == b["compress/bytes_up"] > 0
        assert a["bytes_up"] == b["bytes_up"]
    # the error-feedback residual lives on the node, not in the server's round loop
    assert all(any(k.startswith("compress/residual/") for k in m) for m in nodes.node_memory.values())


@pytest.mark.parametrize("neighbours", ["all", 2])
@pytest.mark.parametrize("silent", [None, (2, "mask"), (5, "unmask")])
def test_secure_aggregation_over_a_channel_equals_the_in_process_protocol(silent, neighbours):
    """Secure aggregation with the clients on their devices: keys, shares and masked inputs as
    messages, each device keeping its protocol state between them. Same model as the in-process
    protocol; a client silent before masking is a dropout (its masks are removed), one silent
    at unmasking still counts (its masked input is in). SecAgg+ (``neighbours=2``: each client
    masks with two neighbours on a random ring) works the same over the channel."""
    pop, (x, y) = _population()
    cfg = SimulationConfig(rounds=3, clients_per_round=6, seed=2, progress=False)
    cu = LocalSGD(epochs=1, batch_size=8, lr=0.1)
    nodes = FakeNodes(lambda: _secagg_steps(neighbours), silent_from_stage=silent)
    got = simulate(
        tiny_mlp(), pop, cu, get_strategy("fedavg"), cfg, engine=nodes, steps=_secagg_steps(neighbours), test=(x, y)
    )
    if silent is None or silent[1] == "unmask":
        ref = simulate(
            tiny_mlp(),
            pop,
            cu,
            get_strategy("fedavg"),
            cfg,
            engine="sequential",
            steps=_secagg_steps(neighbours),
            test=(x, y),
        )
        plain = simulate(
            tiny_mlp(), pop, cu, get_strategy("fedavg"), cfg, engine="sequential", steps=[ClipUpdates(1.0)], test=(x, y)
        )
        for k in ref.params:
            assert torch.equal(ref.params[k], got.params[k]), k
            torch.testing.assert_close(plain.params[k], got.params[k], atol=1e-5, rtol=0)  # fixed-point encoding only
    else:
        pairs = [(r["secagg/survivors"], r["reported"]) for r in got.history]
        assert any(s == n - 1 for s, n in pairs) and all(s >= n - 1 for s, n in pairs), pairs
        assert any("dropped; their masks were removed" in line for r in got.history for line in r.get("log", []))
    assert all(r["secagg/bytes_up"] > 0 for r in got.history)
    assert all(INPUT_KEY not in m for m in nodes.node_memory.values())  # inputs consumed, never kept


class _NodesWithoutChannel(SequentialEngine):
    name = "no-channel"
    runs_client_steps = True


def test_steps_needing_a_channel_are_refused_by_name():
    pop, _ = _population()
    cfg = SimulationConfig(rounds=1, clients_per_round=4, seed=0, progress=False)
    with pytest.raises(ConfigError, match=r"\['secagg'\].*no-channel.*protocol_channel"):
        simulate(
            tiny_mlp(),
            pop,
            LocalSGD(),
            get_strategy("fedavg"),
            cfg,
            engine=_NodesWithoutChannel(),
            steps=[SecureAggregation()],
        )


def test_compression_memory_survives_a_resume(tmp_path):
    pop, (_x, _y) = _population()
    cfg = SimulationConfig(rounds=5, clients_per_round=8, seed=1, progress=False, checkpoint_every=2)
    cu = LocalSGD(epochs=1, batch_size=8, lr=0.1)
    full = simulate(
        tiny_mlp(),
        pop,
        cu,
        get_strategy("fedavg"),
        cfg,
        steps=[CompressUpdates("topk", ratio=0.2)],
        run_dir=tmp_path / "a",
    )
    with pytest.raises(KeyboardInterrupt):
        simulate(
            tiny_mlp(),
            pop,
            cu,
            get_strategy("fedavg"),
            cfg,
            steps=[CompressUpdates("topk", ratio=0.2), KillAt(4)],
            run_dir=tmp_path / "b",
        )
    resumed = simulate(
        tiny_mlp(),
        pop,
        cu,
        get_strategy("fedavg"),
        cfg,
        steps=[CompressUpdates("topk", ratio=0.2)],
        run_dir=tmp_path / "b",
        resume=True,
    )
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k


def test_client_contexts_are_per_client_and_merge_by_summing_numbers():
    a, b = client_context(2, 7, 0), client_context(2, 7, 1)
    assert not torch.equal(torch.rand(3, generator=a.generator), torch.rand(3, generator=b.generator))
    again = client_context(2, 7, 0)  # depends on (seed, round, client) only
    assert torch.equal(
        torch.rand(3, generator=again.generator), torch.rand(3, generator=client_context(2, 7, 0).generator)
    )
    round_ctx = RoundContext(2, torch.Generator())
    merge_client_context(round_ctx, {"bytes": 10, "ids": [0], "mode": "x"}, ["one"])
    merge_client_context(round_ctx, {"bytes": 5, "ids": [1], "mode": "y"}, ["two"])
    assert round_ctx.notes == {"bytes": 15, "ids": [0, 1], "mode": "y"} and round_ctx.log == ["one", "two"]


def test_mismatched_step_lists_name_both_sides():
    with pytest.raises(ConfigError, match=r"server runs 3 update step\(s\), this client built 1"):
        load_step_states([CompressUpdates("q8")], [None, None, None])
