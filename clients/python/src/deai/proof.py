"""Inclusion proofs of state entries, checked against a state root.

Every entry of the ledger's state is one leaf of a Merkle Mountain Range
(``commonware_storage::merkle::mmr``, BLAKE3, peaks folded forward; ``crates/deai-ledger/src/
proof.rs``). The leaf *element* is ``key bytes || value bytes``; the key bytes are fixed-length
per kind (:meth:`StateKey.to_bytes`). With nodes numbered by MMR position (post-order):

* leaf digest  = BLAKE3(position u64 BE || element)
* node digest  = BLAKE3(position u64 BE || left || right)
* root         = BLAKE3(0x00 (MMR) || 0x00 (forward fold) || leaf count u64 BE || folded)
  where ``folded`` left-folds the peak digests, tallest first: ``BLAKE3(acc || peak)``
  (an empty tree's root has no ``folded``).

A proof of one leaf lists ``[fold of the peaks before it?] [peaks after it...] [siblings of its
path, in left-to-right order of the subtrees they stand for]``. :func:`verify_proof` rebuilds
the root from the element and those digests and compares.

What this checks, and what it does not: a proof shows that the entry is in the state whose
root is given. That the root itself is the chain's (certified by a finalization of the block
above the proof's height) is **not** checked here: :meth:`deai.Client.proof` takes the root from
the same node's answer, so it protects against a corrupted or inconsistent answer, not against
a node that lies about the root. See docs/python.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .codec import DecodeError, Reader
from .tx import BlockTarget
from .types import Address, Digest, blake3_hash

__all__ = [
    "Proof",
    "ProofError",
    "StateKey",
    "account_leaf_value",
    "mmr_root",
    "verify_account_entry",
    "verify_proof",
]

#: Most digests in a proof of one element.
MAX_PROOF_DIGESTS = 122
#: Largest leaf count of an MMR.
LEAVES_MAX = 1 << 62

_KEY_TAGS = {
    "meta": 0,
    "account": 1,
    "dataset": 2,
    "task": 3,
    "model": 4,
    "epoch": 5,
    "offer": 6,
    "channel": 7,
    "proposal": 8,
    "blocked": 9,
    "delegations": 10,
}


class ProofError(ValueError):
    """A proof that does not show its entry under the root (or is malformed)."""


@dataclass(frozen=True)
class StateKey:
    """Which entry of the state a leaf holds: ``meta``; ``account``/``delegations`` (an
    address); ``dataset``, ``task``, ``model``, ``epoch``, ``offer``, ``channel``, ``proposal``
    (a number); ``blocked`` (a :class:`~deai.tx.BlockTarget`)."""

    kind: str
    id: Any = None

    def to_bytes(self) -> bytes:
        """The fixed-length key bytes: a tag, then the address, the big-endian id or the
        target's key bytes."""
        if self.kind not in _KEY_TAGS:
            raise ValueError(f"unknown state key kind {self.kind!r}")
        tag = bytes([_KEY_TAGS[self.kind]])
        if self.kind == "meta":
            return tag
        if self.kind in ("account", "delegations"):
            return tag + bytes(Address(self.id))
        if self.kind == "blocked":
            return tag + bytes(self.id.key_bytes())
        return tag + struct.pack(">Q", self.id)

    def to_json(self) -> Any:
        """The node's JSON form: ``{"kind": ..., "id": ...}`` (``{"kind": "meta"}``)."""
        if self.kind == "meta":
            return {"kind": "meta"}
        if self.kind in ("account", "delegations"):
            return {"kind": self.kind, "id": Address(self.id).hex()}
        if self.kind == "blocked":
            t = self.id
            target = {"kind": t.kind, "id": str(t.id) if isinstance(t.id, Address) else t.id}
            return {"kind": "blocked", "id": target}
        return {"kind": self.kind, "id": self.id}

    @classmethod
    def from_json(cls, j: Any) -> StateKey:
        """From the node's JSON form."""
        if j == "meta" or (isinstance(j, dict) and j.get("kind") == "meta"):
            return cls("meta")
        kind, ident = j["kind"], j.get("id")
        if kind in ("account", "delegations"):
            return cls(kind, Address.from_hex(ident))
        if kind == "blocked":
            t = ident
            target_id = Address.from_hex(t["id"]) if t["kind"] == "validator" else t["id"]
            return cls(kind, BlockTarget(t["kind"], target_id))
        if kind not in _KEY_TAGS:
            raise ValueError(f"unknown state key kind {kind!r}")
        return cls(kind, int(ident))

    def __str__(self) -> str:
        if self.kind == "meta":
            return "meta"
        if self.kind == "blocked":
            return f"blocked/{self.id.kind}/{self.id.id}"
        return f"{self.kind}/{self.id}"


@dataclass
class Proof:
    """An inclusion proof of one state entry (``GET /v1/proofs/{kind}/{id}``'s ``proof``)."""

    #: The entry's key.
    key: StateKey
    #: The committed value bytes.
    value: bytes
    #: The leaf's location (index among leaves).
    location: int
    #: Number of leaves in the tree the proof is against.
    leaves: int
    #: Sibling and peak digests.
    digests: list[Digest]

    @classmethod
    def from_json(cls, j: Any) -> Proof:
        """From the node's JSON form."""
        return cls(
            key=StateKey.from_json(j["key"]),
            value=bytes.fromhex(j["value"]),
            location=int(j["location"]),
            leaves=int(j["leaves"]),
            digests=[Digest.from_hex(d) for d in j["digests"]],
        )

    def to_json(self) -> dict[str, Any]:
        """The node's JSON form."""
        return {
            "key": self.key.to_json(),
            "value": self.value.hex(),
            "location": self.location,
            "leaves": self.leaves,
            "digests": [d.hex() for d in self.digests],
        }

    def element(self) -> bytes:
        """The leaf element: key bytes || value bytes."""
        return self.key.to_bytes() + self.value


# --- MMR geometry ---


def _leaf_position(location: int) -> int:
    """The MMR position of the leaf at ``location``: ``2n - popcount(n)``."""
    return 2 * location - bin(location).count("1")


def _peaks(leaves: int) -> list[tuple[int, int, int]]:
    """``(position, height, first leaf)`` of each peak, tallest first."""
    out = []
    start = 0
    for height in range(leaves.bit_length() - 1, -1, -1):
        if leaves >> height & 1:
            pos = _leaf_position(start) + (1 << (height + 1)) - 2
            out.append((pos, height, start))
            start += 1 << height
    return out


def _leaf_digest(pos: int, element: bytes) -> bytes:
    return blake3_hash(struct.pack(">Q", pos), element)


def _node_digest(pos: int, left: bytes, right: bytes) -> bytes:
    return blake3_hash(struct.pack(">Q", pos), left, right)


def _root(leaves: int, peak_digests: list[bytes]) -> bytes:
    head = b"\x00\x00" + struct.pack(">Q", leaves)
    if not peak_digests:
        return blake3_hash(head)
    acc = peak_digests[0]
    for p in peak_digests[1:]:
        acc = blake3_hash(acc, p)
    return blake3_hash(head, acc)


def mmr_root(elements: list[bytes]) -> Digest:
    """The root of an MMR over ``elements`` in order (a reference for tests and tools)."""
    nodes: dict[int, bytes] = {}

    def build(pos: int, height: int, first: int) -> bytes:
        if height == 0:
            d = _leaf_digest(pos, elements[first])
        else:
            left_pos, right_pos = pos - (1 << height), pos - 1
            half = 1 << (height - 1)
            d = _node_digest(
                pos, build(left_pos, height - 1, first), build(right_pos, height - 1, first + half)
            )
        nodes[pos] = d
        return d

    peaks = [build(pos, h, first) for pos, h, first in _peaks(len(elements))]
    return Digest(_root(len(elements), peaks))


def _rebuild(
    pos: int, height: int, first: int, location: int, element: bytes, siblings: list[bytes]
) -> bytes:
    """The digest of the subtree at ``pos`` holding ``location``, consuming ``siblings``
    left-first (each subtree off the path takes one digest)."""
    if height == 0:
        return _leaf_digest(pos, element)
    half = 1 << (height - 1)
    left_pos, right_pos = pos - (1 << height), pos - 1
    if location < first + half:
        left = _rebuild(left_pos, height - 1, first, location, element, siblings)
        right = _take(siblings)
    else:
        left = _take(siblings)
        right = _rebuild(right_pos, height - 1, first + half, location, element, siblings)
    return _node_digest(pos, left, right)


def _take(siblings: list[bytes]) -> bytes:
    if not siblings:
        raise ProofError("the proof has too few digests")
    return siblings.pop(0)


def reconstruct_root(proof: Proof) -> Digest:
    """The root ``proof`` implies for its element (raises :class:`ProofError` when the proof's
    shape is wrong: location out of range, too few or too many digests)."""
    if not 0 <= proof.location < proof.leaves:
        raise ProofError(f"location {proof.location} not below leaf count {proof.leaves}")
    if proof.leaves > LEAVES_MAX:
        raise ProofError(f"leaf count {proof.leaves} too large")
    if len(proof.digests) > MAX_PROOF_DIGESTS:
        raise ProofError(f"{len(proof.digests)} digests, at most {MAX_PROOF_DIGESTS}")
    peaks = _peaks(proof.leaves)
    before = [p for p in peaks if p[2] + (1 << p[1]) <= proof.location]
    after = [p for p in peaks if p[2] > proof.location]
    (pos, height, first) = next(p for p in peaks if p[2] <= proof.location < p[2] + (1 << p[1]))
    digests = [bytes(d) for d in proof.digests]
    need = (1 if before else 0) + len(after) + height
    if len(digests) != need:
        raise ProofError(f"{len(digests)} digests where the proof's shape needs {need}")
    cursor = 0
    peak_digests = []
    if before:
        peak_digests.append(digests[0])
        cursor = 1
    after_digests = digests[cursor : cursor + len(after)]
    siblings = digests[cursor + len(after) :]
    peak_digests.append(_rebuild(pos, height, first, proof.location, proof.element(), siblings))
    peak_digests.extend(after_digests)
    return Digest(_root(proof.leaves, peak_digests))


def verify_proof(root: bytes, proof: Proof) -> None:
    """Checks that ``proof`` shows its key holding its value under ``root``; raises
    :class:`ProofError` otherwise (like ``deai_ledger::verify_proof``)."""
    got = reconstruct_root(proof)
    if bytes(got) != bytes(root):
        raise ProofError(f"{proof.key} is not under root {Digest(root)} (the proof gives {got})")


# --- Entries ---


def account_leaf_value(account: dict[str, Any]) -> bytes:
    """The committed leaf value of an account (its JSON form from the node): ``address ||
    balance u128 || nonce u64 || staked u128 || unbonding (varint n || n x (amount u128 ||
    release_height u64)) [|| validator key[32] || p2p string]``."""
    from .codec import Writer

    w = Writer()
    w.raw(bytes(Address.from_hex(account["address"])))
    w.u128(int(account["balance"]))
    w.u64(int(account["nonce"]))
    w.u128(int(account["staked"]))
    w.length(len(account["unbonding"]))
    for u in account["unbonding"]:
        w.u128(int(u["amount"]))
        w.u64(int(u["release_height"]))
    validator = account.get("validator")
    if validator is not None:
        w.raw(bytes(Address.from_hex(validator["key"])))
        w.string(validator["p2p"])
    return w.to_bytes()


def decode_account_leaf(value: bytes) -> dict[str, Any]:
    """An account's committed leaf value as the node's JSON shape (the inverse of
    :func:`account_leaf_value`)."""
    r = Reader(value)
    out: dict[str, Any] = {
        "address": r.take(32).hex(),
        "balance": str(r.u128()),
        "nonce": r.u64(),
        "staked": str(r.u128()),
    }
    n = r.length()
    if n * 24 > r.remaining:
        raise DecodeError(f"{n} unbonding entries in {r.remaining} bytes")
    out["unbonding"] = [{"amount": str(r.u128()), "release_height": r.u64()} for _ in range(n)]
    if r.remaining:
        out["validator"] = {"key": r.take(32).hex(), "p2p": r.string()}
    r.finish()
    return out


def verify_account_entry(root: bytes, proof: Proof, account: dict[str, Any]) -> None:
    """Checks that ``account`` (the node's JSON of an account) is exactly what ``proof`` proves
    under ``root``: the key names it, the committed bytes are its fields, and the proof holds."""
    key = StateKey("account", Address.from_hex(account["address"]))
    if proof.key != key:
        raise ProofError(f"the proof is of {proof.key}, not {key}")
    if proof.value != account_leaf_value(account):
        raise ProofError(f"{key}: its fields differ from the committed leaf")
    verify_proof(root, proof)
