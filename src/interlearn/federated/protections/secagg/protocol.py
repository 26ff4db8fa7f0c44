"""The pairwise-masking secure aggregation protocol of Bonawitz et al. 2017.

Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal & Seth, "Practical Secure
Aggregation for Privacy-Preserving Machine Learning", CCS 2017 (the semi-honest variant, §4;
the malicious-server consistency round with signatures is not implemented).

Rounds, with ``t`` the threshold:
0. AdvertiseKeys: client ``u`` makes two X25519 key pairs, ``c`` (to encrypt shares to peers)
   and ``s`` (to agree mask seeds), and sends both public keys. Server: >= t clients (U1).
1. ShareKeys: ``u`` draws a self-mask seed ``b_u``, Shamir-shares ``b_u`` and ``s_u^SK``
   (t-out-of-|U1|) and sends share ``v`` encrypted (AES-GCM under HKDF(X25519(c_u, c_v))) for
   every peer ``v``; the server only forwards ciphertexts. Server: >= t clients (U2).
2. MaskedInputCollection: ``u`` sends ``y_u = x_u + PRG(b_u) + sum_{v in U2} +-PRG(s_uv)``
   (``+`` if ``u < v``), uniform in Z_{2**bits}. Server: >= t clients (U3); the rest dropped.
4. Unmasking: each ``u`` in U3 reveals, per peer ``v``, its share of ``b_v`` if ``v`` survived
   and of ``s_v^SK`` if it dropped (never both). With >= t responses the server rebuilds the
   self masks of survivors and the pairwise masks of dropped clients and removes them:
   ``sum_{u in U3} x_u`` is all it learns.

Fewer than ``t`` clients at any stage raises :class:`~interlearn.errors.RoundSkipped` and no sum
is produced. All messages are bytes or int64 tensors and are counted (``bytes_up``).

SecAgg+ (Bell et al. 2020, :mod:`interlearn.federated.protections.secagg.graph`) runs the same rounds on a
sparse graph: the server gives each client only its neighbours' keys, ``U2`` and ``U3``
restricted to its neighbourhood, so a client masks, shares (t-out-of-its neighbourhood) and
unmasks with its neighbours only; the server rebuilds each secret from that client's
neighbours. The client code is the same for both; only what the server sends differs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from interlearn.errors import RoundSkipped
from interlearn.federated.protections.secagg.graph import Graph, complete_graph
from interlearn.federated.protections.secagg.ring import Ring, keystream_words
from interlearn.federated.protections.secagg.shamir import Share, combine_shares, split_secret
from interlearn.types import ClientId

__all__ = ["SecAggClient", "SecAggServer", "Transcript", "secure_sum", "SHARE_BYTES"]

SHARE_BYTES = 66 + 4
"""Bytes of one Shamir share on the wire: ``y`` (< 2**521) and ``x``."""
_RAW = serialization.Encoding.Raw


def _to_ring(words: np.ndarray, ring: Ring) -> torch.Tensor:
    return torch.from_numpy((words & np.uint64(ring.mask)).view(np.int64))


def _kdf(shared: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


class SecAggClient:
    """One client's side of the protocol, holding its encoded input and secrets."""

    def __init__(self, client_id: ClientId, encoded: torch.Tensor, ring: Ring) -> None:
        self.id = client_id
        self.ring = ring
        self._x = encoded
        self._c = X25519PrivateKey.generate()
        self._s = X25519PrivateKey.generate()
        self._b = os.urandom(32)
        self._roster: dict[ClientId, tuple[bytes, bytes]] = {}
        self._inbox: dict[ClientId, bytes] = {}
        self._b_shares: dict[ClientId, Share] = {}
        self._s_shares: dict[ClientId, Share] = {}
        self._enc_keys: dict[ClientId, bytes] = {}

    def advertise_keys(self) -> tuple[bytes, bytes]:
        """Round 0: the public keys ``(c_pk, s_pk)``."""
        return _pub(self._c), _pub(self._s)

    def share_keys(self, roster: Mapping[ClientId, tuple[bytes, bytes]], threshold: int) -> dict[ClientId, bytes]:
        """Round 1: encrypted Shamir shares of ``b_u`` and ``s_u^SK`` for each peer."""
        if len(roster) < threshold:
            raise RoundSkipped(
                f"client {self.id}: only {len(roster)} clients advertised keys, threshold is {threshold}"
            )
        self._roster = dict(roster)
        ids = sorted(roster)
        xs = [v + 1 for v in ids]
        s_raw = self._s.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        b_sh = split_secret(self._b, threshold, xs)
        s_sh = split_secret(s_raw, threshold, xs)
        out: dict[ClientId, bytes] = {}
        for v, bs, ss in zip(ids, b_sh, s_sh):
            if v == self.id:
                self._b_shares[v], self._s_shares[v] = bs, ss
                continue
            key = _kdf(self._c.exchange(X25519PublicKey.from_public_bytes(roster[v][0])), b"secagg-enc")
            self._enc_keys[v] = key  # the same key decrypts v's shares to us in round 4
            nonce = os.urandom(12)
            body = struct.pack(">qq", self.id, v) + bs[1].to_bytes(66, "big") + ss[1].to_bytes(66, "big")
            out[v] = nonce + AESGCM(key).encrypt(nonce, body, None)
        return out

    def masked_input(self, u2: Iterable[ClientId], inbox: Mapping[ClientId, bytes]) -> torch.Tensor:
        """Round 2: ``y_u``, the input plus self mask plus pairwise masks with U2."""
        self._inbox = dict(inbox)
        n = self._x.numel()
        # accumulate in uint64 (wraps mod 2**64, a multiple of the ring size), reduce once
        acc = self._x.numpy().view(np.uint64).copy()
        acc += keystream_words(self._b, n)
        for v in u2:
            if v == self.id:
                continue
            p = keystream_words(self._pair_seed(v), n)
            if self.id < v:
                acc += p
            else:
                acc -= p
        return _to_ring(acc, self.ring)

    def unmask(self, u2: Iterable[ClientId], u3: Iterable[ClientId], threshold: int) -> dict[ClientId, Share]:
        """Round 4: for each peer, the share of ``b_v`` (survivor) or ``s_v^SK`` (dropped)."""
        survivors = set(u3)
        if len(survivors) < threshold:
            raise RoundSkipped(f"client {self.id}: only {len(survivors)} survivors, threshold is {threshold}")
        for v, ct in self._inbox.items():
            body = AESGCM(self._enc_keys[v]).decrypt(ct[:12], ct[12:], None)
            sender, recipient = struct.unpack(">qq", body[:16])
            if (sender, recipient) != (v, self.id):
                raise RoundSkipped(f"client {self.id}: a share from {v} was addressed to {recipient} by {sender}")
            x = self.id + 1
            self._b_shares[v] = (x, int.from_bytes(body[16:82], "big"))
            self._s_shares[v] = (x, int.from_bytes(body[82:148], "big"))
        return {v: (self._b_shares[v] if v in survivors else self._s_shares[v]) for v in u2 if v in self._b_shares}

    def _pair_seed(self, v: ClientId) -> bytes:
        return _kdf(self._s.exchange(X25519PublicKey.from_public_bytes(self._roster[v][1])), b"secagg-mask")

    def to_state(self) -> dict[str, Any]:
        """Everything this client holds between protocol rounds, JSON-serializable (bytes as hex).

        A device that handles each protocol message in a fresh process (a Flower ClientApp)
        keeps this in its own storage between messages; it never leaves the device.
        """
        raw = serialization.PrivateFormat.Raw
        none = serialization.NoEncryption()
        return {
            "id": int(self.id),
            "bits": self.ring.bits,
            "frac_bits": self.ring.frac_bits,
            "x": self._x.numpy().tobytes().hex(),
            "c": self._c.private_bytes(_RAW, raw, none).hex(),
            "s": self._s.private_bytes(_RAW, raw, none).hex(),
            "b": self._b.hex(),
            "roster": [[int(v), c.hex(), k.hex()] for v, (c, k) in self._roster.items()],
            "inbox": [[int(v), ct.hex()] for v, ct in self._inbox.items()],
            "b_shares": [[int(v), x, y] for v, (x, y) in self._b_shares.items()],
            "s_shares": [[int(v), x, y] for v, (x, y) in self._s_shares.items()],
            "enc_keys": [[int(v), k.hex()] for v, k in self._enc_keys.items()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SecAggClient:
        """Inverse of :meth:`to_state`."""
        x = torch.from_numpy(np.frombuffer(bytes.fromhex(state["x"]), dtype=np.int64).copy())
        c = cls(int(state["id"]), x, Ring(int(state["bits"]), int(state["frac_bits"])))
        c._c = X25519PrivateKey.from_private_bytes(bytes.fromhex(state["c"]))
        c._s = X25519PrivateKey.from_private_bytes(bytes.fromhex(state["s"]))
        c._b = bytes.fromhex(state["b"])
        c._roster = {int(v): (bytes.fromhex(ck), bytes.fromhex(sk)) for v, ck, sk in state["roster"]}
        c._inbox = {int(v): bytes.fromhex(ct) for v, ct in state["inbox"]}
        c._b_shares = {int(v): (int(x_), int(y)) for v, x_, y in state["b_shares"]}
        c._s_shares = {int(v): (int(x_), int(y)) for v, x_, y in state["s_shares"]}
        c._enc_keys = {int(v): bytes.fromhex(k) for v, k in state["enc_keys"]}
        return c


@dataclass
class Transcript:
    """What the server saw and how many bytes each client uploaded."""

    bytes_up: dict[ClientId, int] = field(default_factory=dict)
    bytes_down: dict[ClientId, int] = field(default_factory=dict)
    masked: dict[ClientId, torch.Tensor] = field(default_factory=dict)
    survivors: list[ClientId] = field(default_factory=list)
    dropped: list[ClientId] = field(default_factory=list)

    def up(self, cid: ClientId, n: int) -> None:
        self.bytes_up[cid] = self.bytes_up.get(cid, 0) + n

    def down(self, cid: ClientId, n: int) -> None:
        self.bytes_down[cid] = self.bytes_down.get(cid, 0) + n


class SecAggServer:
    """The server's side: routes messages, checks thresholds, removes masks from the sum."""

    def __init__(self, ring: Ring, threshold: int, length: int, graph: Graph | None = None) -> None:
        self.ring, self.t, self.length = ring, threshold, length
        self.graph = graph  # None: every pair (the original protocol)
        self.roster: dict[ClientId, tuple[bytes, bytes]] = {}
        self.u2: list[ClientId] = []
        self.masked: dict[ClientId, torch.Tensor] = {}

    def _need(self, have: int, stage: str) -> None:
        if have < self.t:
            raise RoundSkipped(
                f"secure aggregation failed at {stage}: {have} client(s) left, threshold is {self.t}; "
                "nothing was aggregated this round"
            )

    def collect_keys(self, keys: Mapping[ClientId, tuple[bytes, bytes]]) -> dict[ClientId, tuple[bytes, bytes]]:
        self._need(len(keys), "key advertisement")
        self.roster = dict(keys)
        if self.graph is None:
            self.graph = complete_graph(sorted(keys))
        return self.roster

    def near(self, u: ClientId) -> frozenset[ClientId]:
        """``u`` and its neighbours."""
        return self.graph[u] | {u} if self.graph is not None else frozenset(self.roster)

    def roster_for(self, u: ClientId) -> dict[ClientId, tuple[bytes, bytes]]:
        """The keys ``u`` gets: its neighbourhood's (itself included)."""
        near = self.near(u)
        return {v: k for v, k in self.roster.items() if v in near}

    def restrict(self, u: ClientId, ids: Iterable[ClientId]) -> list[ClientId]:
        """``ids`` within ``u``'s neighbourhood (what the server tells ``u`` of U2 / U3)."""
        near = self.near(u)
        return sorted(v for v in ids if v in near)

    def route_shares(self, sent: Mapping[ClientId, Mapping[ClientId, bytes]]) -> dict[ClientId, dict[ClientId, bytes]]:
        self._need(len(sent), "key sharing")
        self.u2 = sorted(sent)
        inbox: dict[ClientId, dict[ClientId, bytes]] = {v: {} for v in self.u2}
        for u, cts in sent.items():
            for v, ct in cts.items():
                if v in inbox:
                    inbox[v][u] = ct
        return inbox

    def collect_masked(self, masked: Mapping[ClientId, torch.Tensor]) -> list[ClientId]:
        self._need(len(masked), "masked input collection")
        self.masked = dict(masked)
        return sorted(masked)

    def unmask(self, shares: Mapping[ClientId, Mapping[ClientId, Share]]) -> torch.Tensor:
        """Rebuild the masks to remove and return the ring sum of the survivors' inputs."""
        self._need(len(shares), "unmasking")
        u3 = sorted(self.masked)
        dropped = [v for v in self.u2 if v not in self.masked]
        total = np.zeros(self.length, dtype=np.uint64)  # wraps mod 2**64; reduced at the end
        for y in self.masked.values():
            total += y.numpy().view(np.uint64)
        for u in u3:
            b_u = combine_shares([s[u] for s in shares.values() if u in s], self.t)
            total -= keystream_words(b_u, self.length)
        for v in dropped:
            raw = combine_shares([s[v] for s in shares.values() if v in s], self.t)
            s_v = X25519PrivateKey.from_private_bytes(raw)
            for u in self.restrict(v, u3):
                if u == v:
                    continue
                seed = _kdf(s_v.exchange(X25519PublicKey.from_public_bytes(self.roster[u][1])), b"secagg-mask")
                p = keystream_words(seed, self.length)
                # u added +p if u < v, -p otherwise: take back exactly that
                if u < v:
                    total -= p
                else:
                    total += p
        return _to_ring(total, self.ring)


def secure_sum(
    inputs: Mapping[ClientId, torch.Tensor],
    ring: Ring,
    threshold: int,
    *,
    drop_before_masking: Iterable[ClientId] = (),
    drop_before_unmasking: Iterable[ClientId] = (),
    graph: Graph | None = None,
) -> tuple[torch.Tensor, Transcript]:
    """Run the whole protocol in-process between one client object per input and a server.

    Args:
        inputs: each client's ring-encoded input (int64, same length).
        ring: the ring the inputs are encoded in.
        threshold: ``t``, the fewest clients that must survive each stage (SecAgg+: in each
            neighbourhood, the client itself included).
        graph: who masks with whom (:func:`~interlearn.federated.protections.secagg.graph.harary_graph` for
            SecAgg+); ``None`` = every pair.
        drop_before_masking: clients that go silent after sharing keys (their masks are
            removed through their peers' shares).
        drop_before_unmasking: survivors that send a masked input but no unmasking shares.

    Returns:
        The ring sum of the inputs of clients that sent a masked input, and the transcript.

    Raises:
        RoundSkipped: fewer than ``threshold`` clients at some stage; no sum is returned.
    """
    length = next(iter(inputs.values())).numel()
    tr = Transcript()
    server = SecAggServer(ring, threshold, length, graph)
    clients = {cid: SecAggClient(cid, x.reshape(-1), ring) for cid, x in inputs.items()}
    inbox = _exchange_keys(server, clients, threshold, tr)
    masked = _masking(server, clients, inbox, set(drop_before_masking), tr)
    u3 = server.collect_masked(masked)
    tr.masked = dict(masked)
    shares = _unmasking(server, clients, u3, set(drop_before_unmasking), threshold, tr)
    total = server.unmask(shares)
    tr.survivors = u3
    tr.dropped = [v for v in server.u2 if v not in masked]
    return total, tr


def _exchange_keys(
    server: SecAggServer, clients: Mapping[ClientId, SecAggClient], threshold: int, tr: Transcript
) -> dict[ClientId, dict[ClientId, bytes]]:
    """Stages 0-1: every client advertises its keys, then secret-shares them with its roster."""
    keys = {cid: c.advertise_keys() for cid, c in clients.items()}
    for cid in keys:
        tr.up(cid, 64)
    server.collect_keys(keys)
    sent = {}
    for cid, c in clients.items():
        roster = server.roster_for(cid)
        tr.down(cid, 72 * len(roster))
        sent[cid] = c.share_keys(roster, threshold)
        tr.up(cid, sum(len(ct) for ct in sent[cid].values()))
    return server.route_shares(sent)


def _masking(
    server: SecAggServer,
    clients: Mapping[ClientId, SecAggClient],
    inbox: Mapping[ClientId, Mapping[ClientId, bytes]],
    gone: set[ClientId],
    tr: Transcript,
) -> dict[ClientId, torch.Tensor]:
    """Stage 2: every client still there (not in ``gone``) sends its masked input."""
    masked = {}
    for cid in server.u2:
        near_u2 = server.restrict(cid, server.u2)
        tr.down(cid, sum(len(ct) for ct in inbox[cid].values()) + 8 * len(near_u2))
        if cid not in gone:
            masked[cid] = clients[cid].masked_input(near_u2, inbox[cid])
            tr.up(cid, server.length * server.ring.bytes_per_element)
    return masked


def _unmasking(
    server: SecAggServer,
    clients: Mapping[ClientId, SecAggClient],
    u3: list[ClientId],
    quiet: set[ClientId],
    threshold: int,
    tr: Transcript,
) -> dict[ClientId, dict[ClientId, Share]]:
    """Stage 3: every survivor not in ``quiet`` sends the shares that remove the masks."""
    shares = {}
    for cid in u3:
        near_u2, near_u3 = server.restrict(cid, server.u2), server.restrict(cid, u3)
        tr.down(cid, 8 * len(near_u3))
        if cid not in quiet:
            shares[cid] = clients[cid].unmask(near_u2, near_u3, threshold)
            tr.up(cid, SHARE_BYTES * len(shares[cid]))
    return shares
