"""Inclusion proofs checked exactly as deai_ledger::verify_proof does: every proof of a small
Rust-built state verifies against its root (peaks before and after the leaf included), and each
tampered copy, and every single-byte change, fails."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deai import Digest, Proof, ProofError, StateKey, verify_account_entry, verify_proof
from deai.proof import account_leaf_value, decode_account_leaf, reconstruct_root


def proofs(v: Any) -> list[Proof]:
    return [Proof.from_json(p) for p in v["proofs"]]


def test_every_proof_verifies(proof_vectors: Any) -> None:
    root = Digest.from_hex(proof_vectors["root"])
    ps = proofs(proof_vectors)
    assert {p.leaves for p in ps} == {proof_vectors["leaves"]}
    assert sorted(p.location for p in ps) == list(range(proof_vectors["leaves"]))
    for p, j in zip(ps, proof_vectors["proofs"], strict=True):
        verify_proof(root, p)
        assert p.to_json() == j


def test_tampered_proofs_fail(proof_vectors: Any) -> None:
    root = Digest.from_hex(proof_vectors["root"])
    assert len(proof_vectors["tampered"]) >= 7
    for t in proof_vectors["tampered"]:
        with pytest.raises(ProofError):
            verify_proof(root, Proof.from_json(t["proof"]))


def test_any_changed_byte_fails(proof_vectors: Any) -> None:
    root = Digest.from_hex(proof_vectors["root"])
    for p in proofs(proof_vectors)[:3] + proofs(proof_vectors)[-2:]:
        for i in range(len(p.value)):
            q = copy.deepcopy(p)
            q.value = q.value[:i] + bytes([q.value[i] ^ 0x01]) + q.value[i + 1 :]
            with pytest.raises(ProofError):
                verify_proof(root, q)
        for i in range(len(p.digests)):
            q = copy.deepcopy(p)
            q.digests[i] = Digest(bytes([q.digests[i][0] ^ 0x40]) + q.digests[i][1:])
            with pytest.raises(ProofError):
                verify_proof(root, q)
        with pytest.raises(ProofError):
            verify_proof(Digest(bytes([root[0] ^ 1]) + root[1:]), p)


def test_malformed_shapes_are_refused(proof_vectors: Any) -> None:
    p = proofs(proof_vectors)[0]
    for change in (
        {"location": p.leaves},
        {"leaves": 0},
        {"leaves": (1 << 62) + 1},
        {"digests": p.digests * 40},
    ):
        q = copy.deepcopy(p)
        for k, v in change.items():
            setattr(q, k, v)
        with pytest.raises(ProofError):
            reconstruct_root(q)


def test_account_entries_are_the_committed_bytes(proof_vectors: Any) -> None:
    root = Digest.from_hex(proof_vectors["root"])
    checked = 0
    for p, e in zip(proofs(proof_vectors), proof_vectors["entries"], strict=True):
        if e is None or e["kind"] != "account":
            continue
        account = e["entry"]
        assert account_leaf_value(account) == p.value
        assert decode_account_leaf(p.value) == account
        verify_account_entry(root, p, account)
        lying = dict(account, balance=str(int(account["balance"]) + 1))
        with pytest.raises(ProofError):
            verify_account_entry(root, p, lying)
        checked += 1
    assert checked >= 8


def test_state_keys() -> None:
    from deai import Address, BlockTarget

    a = Address(bytes([9] * 32))
    assert StateKey("account", a).to_bytes() == b"\x01" + bytes(a)
    assert StateKey("task", 3).to_bytes() == b"\x03" + (3).to_bytes(8, "big")
    assert StateKey("meta").to_bytes() == b"\x00"
    blocked = StateKey("blocked", BlockTarget("model", 1))
    assert blocked.to_bytes() == b"\x09\x01" + bytes(24) + (1).to_bytes(8, "big")
    for k in (StateKey("account", a), StateKey("meta"), blocked, StateKey("epoch", 0)):
        assert StateKey.from_json(k.to_json()) == k
