"""Vouchers, query receipts and signed receipt batches exactly as the Rust ledger builds and
checks them (tests/vectors/payments.json)."""

from __future__ import annotations

from typing import Any

import pytest

from deai import (
    Address,
    Digest,
    Key,
    QueryReceipt,
    SignedLeaves,
    SignedQueryReceipt,
    SignedVoucher,
    Voucher,
)
from deai.inference import BadAnswer, Output, ProviderAnswer
from deai.payment import (
    RECEIPT_DOMAIN,
    VOUCHER_DOMAIN,
    bmt_proof,
    bmt_root,
    bmt_verify,
    sign_receipts,
)


def test_domains(payment_vectors: Any) -> None:
    assert payment_vectors["voucher_domain"].encode() == VOUCHER_DOMAIN
    assert payment_vectors["receipt_domain"].encode() == RECEIPT_DOMAIN


def test_vouchers(payment_vectors: Any) -> None:
    for v in payment_vectors["vouchers"]:
        signed = SignedVoucher.from_json(v["voucher"])
        assert signed.to_json() == v["voucher"]
        assert signed.voucher.signing_bytes().hex() == v["signing_bytes"]
        assert signed.encode().hex() == v["encoded"]
        payer = Key.from_seed_hex(v["signer_seed"])
        assert signed.voucher.sign(payer) == signed
        assert signed.verify(payer.address)
        assert not signed.verify(Key(bytes(32)).address)
        assert SignedVoucher.decode(bytes.fromhex(v["encoded"])) == signed


def test_voucher_built_from_values(payment_vectors: Any) -> None:
    v = payment_vectors["vouchers"][1]
    payer = Key.from_seed_hex(v["signer_seed"])
    signed = Voucher(chain_id="deai-vectors", channel_id=9, cumulative_amount=420).sign(payer)
    assert signed.encode().hex() == v["encoded"]


def test_receipts(payment_vectors: Any) -> None:
    provider = Address.from_hex(payment_vectors["provider"])
    assert Key.from_seed_hex(payment_vectors["provider_seed"]).address == provider
    for v in payment_vectors["receipts"]:
        r = SignedQueryReceipt.from_json(v["receipt"])
        assert r.to_json() == v["receipt"]
        assert r.receipt.signing_bytes().hex() == v["signing_bytes"]
        assert str(r.receipt.leaf()) == v["leaf"]
        assert r.encode().hex() == v["encoded"]
        assert SignedQueryReceipt.decode(bytes.fromhex(v["encoded"])) == r
        assert r.verify(provider)
        assert not r.verify(Key(bytes(32)).address)


def test_signed_batch(payment_vectors: Any) -> None:
    provider_key = Key.from_seed_hex(payment_vectors["provider_seed"])
    batch = payment_vectors["signed_leaves"]
    leaves = [Digest.from_hex(x) for x in batch["leaves"]]
    assert str(bmt_root(leaves)) == batch["root"]
    signed = SignedLeaves.sign(leaves, provider_key)
    assert signed.signature.hex() == batch["signature"]
    assert str(signed.verify(provider_key.address)) == batch["root"]
    # The payer rebuilds each receipt's proof from the leaves alone.
    receipts = [SignedQueryReceipt.from_json(v["receipt"]) for v in payment_vectors["receipts"]]
    for i, r in enumerate(receipts):
        assert signed.receipt(r.receipt, i) == r
        assert signed.receipt(r.receipt, (i + 1) % len(receipts)) is None
    # And the provider side signs the same receipts to the same bytes.
    assert sign_receipts([r.receipt for r in receipts], provider_key) == receipts


def test_single_receipt_is_a_batch_of_one(payment_vectors: Any) -> None:
    single = payment_vectors["single"]
    r = SignedQueryReceipt.from_json(single["receipt"])
    provider_key = Key.from_seed_hex(payment_vectors["provider_seed"])
    assert sign_receipts([r.receipt], provider_key) == [r]
    assert r.encode().hex() == single["encoded"]
    assert r.batch.siblings == [] and r.batch.leaf_count == 1


def test_tampered_receipts_fail(payment_vectors: Any) -> None:
    provider = Address.from_hex(payment_vectors["provider"])
    r = SignedQueryReceipt.from_json(payment_vectors["receipts"][1]["receipt"])
    r.receipt.output = r.receipt.output + b"\x00"
    assert not r.verify(provider)
    r = SignedQueryReceipt.from_json(payment_vectors["receipts"][1]["receipt"])
    r.batch.position = 0
    assert not r.verify(provider)
    r = SignedQueryReceipt.from_json(payment_vectors["receipts"][1]["receipt"])
    r.batch.leaf_count = 4
    assert not r.verify(provider)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_bmt_proofs_verify_at_every_position(n: int) -> None:
    leaves = [Digest.hash(bytes([i])) for i in range(n)]
    root = bmt_root(leaves)
    for i in range(n):
        proof = bmt_proof(leaves, i)
        assert bmt_verify(leaves[i], i, n, proof, root)
        assert not bmt_verify(leaves[i], i, n + 1, proof, root)
        if n > 1:
            assert not bmt_verify(leaves[(i + 1) % n], i, n, proof, root)
        assert not bmt_verify(leaves[i], i, n, [*proof, root], root)


def test_provider_answer_wire_format() -> None:
    key = Key(bytes([7] * 32))
    leaves = [Digest.hash(b"a"), Digest.hash(b"b")]
    signed = SignedLeaves.sign(leaves, key)
    out = Output(cls=1, logits=[-5, 9, 3])
    out_bytes = (
        (1).to_bytes(4, "little")
        + (3).to_bytes(4, "little")
        + b"".join(x.to_bytes(4, "little", signed=True) for x in out.logits)
    )
    body = (
        (41).to_bytes(8, "big")
        + (2).to_bytes(4, "big")
        + b"".join(len(o).to_bytes(4, "big") + o for o in (out_bytes, out_bytes))
        + b"\x01"
        + (2).to_bytes(4, "big")
        + b"".join(leaves)
        + signed.signature
    )
    answer = ProviderAnswer.decode(body, 2)
    assert answer.first_sequence == 41 and answer.outputs == [out_bytes, out_bytes]
    assert answer.signed == signed
    assert Output.from_bytes(out_bytes) == out
    flag_at = 8 + 4 + 2 * (4 + len(out_bytes))
    assert body[flag_at] == 1
    wrong_flag = body[:flag_at] + b"\x02" + body[flag_at + 1 :]
    for bad in (body + b"\x00", body[:-1], wrong_flag):
        with pytest.raises(BadAnswer):
            ProviderAnswer.decode(bad, 2)
    with pytest.raises(BadAnswer):
        ProviderAnswer.decode(body, 3)


def test_receipt_fields_make_the_leaf() -> None:
    r = QueryReceipt(
        chain_id="c",
        offer_id=1,
        channel_id=2,
        sequence=3,
        input_hash=Digest.hash(b"in"),
        output=b"\x00" * 12,
        model_hash=Digest.hash(b"m"),
        voucher_amount=5,
    )
    assert r.leaf() == Digest.hash(RECEIPT_DOMAIN + r.encode())
