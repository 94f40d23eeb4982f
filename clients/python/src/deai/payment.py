"""What a payer and a provider sign off-chain: cumulative vouchers and query receipts.

The encodings are those of ``crates/deai-ledger/src/payment.rs`` (docs/inference.md)::

    Voucher       = chain_id (varint len || UTF-8) || channel_id u64 BE || cumulative_amount u128 BE
    SignedVoucher = Voucher || ed25519 signature[64] over "deai-voucher-v1" || Voucher

    QueryReceipt  = chain_id || offer_id u64 || channel_id u64 || sequence u64 || input_hash[32]
                  || output (varint len || bytes) || model_hash[32] || voucher_amount u128
    ReceiptBatch  = position u32 || leaf_count u32 || siblings (varint n || n x 32) || root[32]
    SignedQueryReceipt = QueryReceipt || ReceiptBatch
                       || signature[64] over "deai-receipt-v1" || root

A receipt's leaf is BLAKE3("deai-receipt-v1" || QueryReceipt); a provider signs the root of a
binary Merkle tree of a batch's leaves (``commonware_storage::bmt`` over BLAKE3: each leaf
hashed with its u32 position, an odd node paired with itself, the root bound to the leaf
count). :func:`bmt_root` and :func:`bmt_proof` build it; :meth:`SignedQueryReceipt.verify` and
:meth:`SignedLeaves.verify` check it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer
from .keys import Key, verify
from .schema import AMOUNT, BYTES, DIGEST, SIG, STR, U32, U64, ListOf, field, nested, struct_codec
from .types import Address, Digest, blake3_hash

__all__ = [
    "RECEIPT_BATCH_MAX",
    "RECEIPT_DOMAIN",
    "VOUCHER_DOMAIN",
    "QueryReceipt",
    "ReceiptBatch",
    "SignedLeaves",
    "SignedQueryReceipt",
    "SignedVoucher",
    "Voucher",
    "bmt_proof",
    "bmt_root",
    "bmt_verify",
    "sign_receipts",
]

#: Prefix of every voucher signature.
VOUCHER_DOMAIN = b"deai-voucher-v1"
#: Prefix of every receipt signature (and of every receipt leaf).
RECEIPT_DOMAIN = b"deai-receipt-v1"
#: Most receipts one signed batch may hold.
RECEIPT_BATCH_MAX = 1 << 16


def _encode(obj: object) -> bytes:
    w = Writer()
    struct_codec(type(obj)).write(w, obj)
    return w.to_bytes()


@dataclass
class Voucher:
    """A payer's promise: the channel's provider may take up to ``cumulative_amount`` in all."""

    chain_id: str = field(STR)
    channel_id: int = field(U64)
    cumulative_amount: int = field(AMOUNT)

    def encode(self) -> bytes:
        """The canonical bytes."""
        return _encode(self)

    def signing_bytes(self) -> bytes:
        """What the payer signs: ``"deai-voucher-v1" || encoding``."""
        return VOUCHER_DOMAIN + self.encode()

    def sign(self, payer: Key) -> SignedVoucher:
        """Signs the voucher with the payer's key (the account that opened the channel)."""
        return SignedVoucher(voucher=self, signature=payer.sign(self.signing_bytes()))


@dataclass
class SignedVoucher:
    """A :class:`Voucher` with the payer's signature: what a query's ``deai-voucher`` header
    carries (hex of :meth:`encode`) and what a ``ChannelClaim`` redeems."""

    voucher: Voucher = field(nested("Voucher", globals()))
    signature: bytes = field(SIG)

    def encode(self) -> bytes:
        """The canonical bytes."""
        return _encode(self)

    @classmethod
    def decode(cls, data: bytes) -> SignedVoucher:
        """Reads canonical bytes (no trailing bytes)."""
        r = Reader(data)
        v = struct_codec(cls).read(r)
        r.finish()
        return v

    def verify(self, payer: Address) -> bool:
        """Whether ``payer`` signed it."""
        return verify(payer, self.voucher.signing_bytes(), self.signature)

    def to_json(self) -> dict[str, object]:
        """The node's JSON shape."""
        return struct_codec(SignedVoucher).to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, j: object) -> SignedVoucher:
        """From the node's JSON shape."""
        return struct_codec(cls).from_json(j)


@dataclass
class QueryReceipt:
    """A provider's statement of one answered query."""

    chain_id: str = field(STR)
    offer_id: int = field(U64)
    channel_id: int = field(U64)
    sequence: int = field(U64)
    input_hash: Digest = field(DIGEST)
    output: bytes = field(BYTES)
    model_hash: Digest = field(DIGEST)
    voucher_amount: int = field(AMOUNT)

    def encode(self) -> bytes:
        """The canonical bytes."""
        return _encode(self)

    def signing_bytes(self) -> bytes:
        """``"deai-receipt-v1" || encoding``."""
        return RECEIPT_DOMAIN + self.encode()

    def leaf(self) -> Digest:
        """The receipt's leaf in its batch tree: BLAKE3 of :meth:`signing_bytes`."""
        return Digest.hash(self.signing_bytes())


@dataclass
class ReceiptBatch:
    """Where a receipt sits in the batch its provider signed: an inclusion proof."""

    position: int = field(U32)
    leaf_count: int = field(U32)
    siblings: list[Digest] = field(ListOf(DIGEST))
    root: Digest = field(DIGEST)


@dataclass
class SignedQueryReceipt:
    """A receipt with its place in a signed batch and the provider's signature of the root."""

    receipt: QueryReceipt = field(nested("QueryReceipt", globals()))
    batch: ReceiptBatch = field(nested("ReceiptBatch", globals()))
    signature: bytes = field(SIG)

    def encode(self) -> bytes:
        """The canonical bytes."""
        return _encode(self)

    @classmethod
    def decode(cls, data: bytes) -> SignedQueryReceipt:
        """Reads canonical bytes (no trailing bytes; a position below a count of 1..=65536)."""
        r = Reader(data)
        v = struct_codec(cls).read(r)
        r.finish()
        b = v.batch
        if not (0 < b.leaf_count <= RECEIPT_BATCH_MAX and b.position < b.leaf_count):
            raise DecodeError("position must be below a leaf count of 1 to 65536")
        return v

    def verify(self, provider: Address) -> bool:
        """Whether the receipt is in its batch and ``provider`` signed the batch's root."""
        b = self.batch
        if not bmt_verify(self.receipt.leaf(), b.position, b.leaf_count, b.siblings, b.root):
            return False
        return verify(provider, RECEIPT_DOMAIN + bytes(b.root), self.signature)

    def to_json(self) -> dict[str, object]:
        """The node's JSON shape."""
        return struct_codec(SignedQueryReceipt).to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, j: object) -> SignedQueryReceipt:
        """From the node's JSON shape."""
        return struct_codec(cls).from_json(j)


@dataclass
class SignedLeaves:
    """The leaves of one signed receipt batch, in tree order, with the provider's signature of
    their root: what a provider's answer carries instead of one proof per receipt."""

    leaves: list[Digest]
    signature: bytes

    @classmethod
    def sign(cls, leaves: Sequence[Digest], provider: Key) -> SignedLeaves:
        """Signs ``leaves`` (1 to 65536) with the provider's key."""
        if not 0 < len(leaves) <= RECEIPT_BATCH_MAX:
            raise ValueError(f"a receipt batch holds 1 to {RECEIPT_BATCH_MAX} leaves")
        root = bmt_root(leaves)
        return cls(list(leaves), provider.sign(RECEIPT_DOMAIN + bytes(root)))

    def verify(self, provider: Address) -> Digest | None:
        """The root, when ``provider`` signed it; ``None`` otherwise."""
        if not 0 < len(self.leaves) <= RECEIPT_BATCH_MAX:
            return None
        root = bmt_root(self.leaves)
        if not verify(provider, RECEIPT_DOMAIN + bytes(root), self.signature):
            return None
        return root

    def receipt(self, receipt: QueryReceipt, position: int) -> SignedQueryReceipt | None:
        """``receipt`` as a :class:`SignedQueryReceipt` of this batch with its proof; ``None``
        when its leaf is not the one at ``position``."""
        if not 0 <= position < len(self.leaves) or self.leaves[position] != receipt.leaf():
            return None
        batch = ReceiptBatch(
            position=position,
            leaf_count=len(self.leaves),
            siblings=bmt_proof(self.leaves, position),
            root=bmt_root(self.leaves),
        )
        return SignedQueryReceipt(receipt=receipt, batch=batch, signature=self.signature)


def sign_receipts(receipts: Sequence[QueryReceipt], provider: Key) -> list[SignedQueryReceipt]:
    """Signs a batch of receipts with one signature over their Merkle root (provider side;
    tests use it to check the encoding against the Rust side)."""
    if not receipts:
        return []
    signed = SignedLeaves.sign([r.leaf() for r in receipts], provider)
    out = []
    for i, r in enumerate(receipts):
        s = signed.receipt(r, i)
        assert s is not None
        out.append(s)
    return out


# --- Binary Merkle tree (commonware_storage::bmt over BLAKE3) ---


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    level = [blake3_hash(struct.pack(">I", i), bytes(leaf)) for i, leaf in enumerate(leaves)]
    if not level:
        level = [blake3_hash()]
    levels = [level]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            left = level[i]
            right = level[i + 1] if i + 1 < len(level) else left
            nxt.append(blake3_hash(left, right))
        level = nxt
        levels.append(level)
    return levels


def bmt_root(leaves: Sequence[bytes]) -> Digest:
    """The finalized root of a batch: BLAKE3(leaf_count u32 BE || tree root)."""
    top = _levels(leaves)[-1][0]
    return Digest.hash(struct.pack(">I", len(leaves)), top)


def bmt_proof(leaves: Sequence[bytes], position: int) -> list[Digest]:
    """The siblings from leaf ``position`` up (an odd level's last node has none)."""
    out = []
    for level in _levels(leaves)[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            out.append(Digest(level[sibling]))
        position //= 2
    return out


def bmt_verify(
    leaf: bytes, position: int, leaf_count: int, siblings: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``leaf`` is at ``position`` of a batch of ``leaf_count`` under ``root``."""
    if not 0 <= position < leaf_count:
        return False
    computed = blake3_hash(struct.pack(">I", position), bytes(leaf))
    size = leaf_count
    it = iter(siblings)
    try:
        while size > 1:
            if position % 2 == 0 and position + 1 >= size:
                computed = blake3_hash(computed, computed)
            elif position % 2 == 0:
                computed = blake3_hash(computed, bytes(next(it)))
            else:
                computed = blake3_hash(bytes(next(it)), computed)
            position //= 2
            size = (size + 1) // 2
    except StopIteration:
        return False
    if next(it, None) is not None:
        return False
    return blake3_hash(struct.pack(">I", leaf_count), computed) == bytes(root)
