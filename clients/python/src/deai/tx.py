"""Transactions: every body kind, the unsigned :class:`Tx`, the :class:`SignedTx`, their
canonical encoding, signing, ids and JSON — byte for byte what ``crates/deai-ledger/src/tx``
does (checked against vectors the Rust side generates: ``tests/vectors/txs.json``).

Encoding (``tx/mod.rs``)::

    SignedTx = Tx || signature[64]
    Tx       = chain_id (varint len || UTF-8) || sender[32] || nonce u64 BE || fee u128 BE
             || tag u8 || body

The signature is ed25519 over ``"deai/tx/v1" || Tx``; the id is BLAKE3 of the ``SignedTx``
encoding. Each body class names its ``TAG`` (the wire tag) and ``TYPE`` (the ``"type"`` of its
JSON form, serde's snake-case variant name); fields are written in declaration order.

Example::

    from deai import Key, Transfer, Tx
    key = Key.load(".deai/dev.key")
    tx = Tx(chain_id="deai-dev", sender=key.address, nonce=0, fee=1,
            body=Transfer(to=other, amount=10**18))
    signed = tx.sign(key)
    signed.encode().hex(), signed.id()
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .codec import DecodeError, Reader, Writer
from .keys import Key, verify
from .payment import SignedQueryReceipt, SignedVoucher
from .schema import (
    ADDRESS,
    AMOUNT,
    BOOL,
    BYTES,
    DIGEST,
    I64,
    SIG,
    STR,
    U32,
    U64,
    Codec,
    ListOf,
    Opt,
    field,
    nested,
    struct_codec,
)
from .types import Address, Digest, blake3_hash

__all__ = [
    "POSSESSION_DOMAIN",
    "SIGNING_DOMAIN",
    "BlockTarget",
    "ChallengeVote",
    "ChannelClaim",
    "ChannelClose",
    "ChannelOpen",
    "ChannelTopUp",
    "Choice",
    "Claim",
    "ConsentPolicy",
    "ConsentRevoke",
    "ConsentUpdate",
    "DatasetRegister",
    "Delegate",
    "EpsilonStep",
    "Execute",
    "Metric",
    "ModelRegister",
    "OfferCreate",
    "OfferUpdate",
    "OfferWithdraw",
    "ParamChange",
    "ParamSet",
    "ProposalKind",
    "Propose",
    "ReceiptDispute",
    "RoundChallenge",
    "RoundExpire",
    "RoundOpen",
    "RoundResult",
    "Score",
    "SecAggParams",
    "SetBlocked",
    "SignedTx",
    "Stake",
    "TaskCancel",
    "TaskClose",
    "TaskCommitValidation",
    "TaskCreate",
    "TaskSetCoordinator",
    "Transfer",
    "TreasurySpend",
    "Tx",
    "TxBody",
    "Undelegate",
    "Unstake",
    "ValidatorDeclare",
    "Vote",
    "body_types",
    "dataset_commitment",
    "validation_commitment",
]

#: Prefix of every signed transaction message.
SIGNING_DOMAIN = b"deai/tx/v1"
#: Prefix of a validator key's possession signature.
POSSESSION_DOMAIN = b"deai/validator-key/v1"

_DATASET_DOMAIN = b"deai/dataset-commitment/v1"
_VALIDATION_DOMAIN = b"deai/validation/v1"


def dataset_commitment(salt: bytes, content_hash: bytes) -> Digest:
    """The salted commitment a data owner registers:
    ``BLAKE3("deai/dataset-commitment/v1" || salt || content_hash)``."""
    return Digest(blake3_hash(_DATASET_DOMAIN, bytes(salt), bytes(content_hash)))


def validation_commitment(salt: bytes, data_hash: bytes) -> Digest:
    """``BLAKE3("deai/validation/v1" || salt || data_hash)``: what ``TaskCommitValidation``
    records and ``TaskClose`` reproduces."""
    return Digest(blake3_hash(_VALIDATION_DOMAIN, bytes(salt), bytes(data_hash)))


def _n(name: str) -> Codec[Any]:
    return nested(name, globals())


# --- Nested types ---


@dataclass
class ConsentPolicy:
    """What a data owner accepts (``state/dataset.rs``). ε values are fixed point (× 10⁶)."""

    purposes: list[str] = field(ListOf(STR))
    creators: list[Address] | None = field(Opt(ListOf(ADDRESS)))
    reward_min: int = field(AMOUNT)
    epsilon_max: int = field(U64)
    expiry_height: int = field(U64)
    epsilon_round_max: int = field(U64, default=0)
    noise_multiplier_min: int = field(U64, default=0)
    royalty_bps_min: int = field(U32, default=0)


@dataclass
class EpsilonStep:
    """One step of a task's ε schedule: cumulative ε after ``rounds`` rounds (fixed point)."""

    rounds: int = field(U32)
    epsilon: int = field(U64)


@dataclass
class Metric:
    """A named metric in fixed point (value × 10⁶)."""

    name: str = field(STR)
    value: int = field(I64)


@dataclass
class SecAggParams:
    """Secure-aggregation parameters: clients ``n``, graph degree ``k``, threshold ``t``."""

    n: int = field(U32)
    k: int = field(U32)
    t: int = field(U32)


@dataclass
class Score:
    """One dataset's contribution score in a round (``0..=1_000_000``)."""

    dataset: int = field(U64)
    value: int = field(U64)


@dataclass
class ParamSet:
    """One parameter set to a new value (its genesis name; the value a canonical decimal)."""

    name: str = field(STR)
    value: str = field(STR)


_CLAIMS = {"group_sum": 0, "aggregate": 1, "model": 2, "score": 3}
_CLAIM_NAMES = {v: k for k, v in _CLAIMS.items()}
_GROUP_CLAIMS = ("group_sum", "score")


@dataclass
class Claim:
    """What a round challenge disputes: ``group_sum`` or ``score`` of a ``group``, or the
    ``aggregate`` or the ``model``."""

    kind: str
    group: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _CLAIMS:
            raise ValueError(f"unknown claim {self.kind!r}; one of {sorted(_CLAIMS)}")
        if (self.group is not None) != (self.kind in _GROUP_CLAIMS):
            raise ValueError(f"claim {self.kind!r}: group must be given exactly for group claims")


class _ClaimCodec(Codec[Claim]):
    def write(self, w: Writer, v: Claim) -> None:
        w.u8(_CLAIMS[v.kind])
        if v.group is not None:
            w.u32(v.group)

    def read(self, r: Reader) -> Claim:
        code = r.u8()
        if code not in _CLAIM_NAMES:
            raise DecodeError(f"claim code {code}")
        kind = _CLAIM_NAMES[code]
        return Claim(kind, r.u32() if kind in _GROUP_CLAIMS else None)

    def to_json(self, v: Claim) -> Any:
        return {"kind": v.kind} if v.group is None else {"kind": v.kind, "group": v.group}

    def from_json(self, j: Any) -> Claim:
        return Claim(j["kind"], j.get("group"))


_TARGETS = {"dataset": 0, "model": 1, "offer": 2, "validator": 3}
_TARGET_NAMES = {v: k for k, v in _TARGETS.items()}


@dataclass
class BlockTarget:
    """What a governance block decision applies to: a ``dataset``, ``model`` or ``offer`` id,
    or a ``validator`` address."""

    kind: str
    id: int | Address

    def __post_init__(self) -> None:
        if self.kind not in _TARGETS:
            raise ValueError(f"unknown block target {self.kind!r}; one of {sorted(_TARGETS)}")
        if self.kind == "validator":
            if not isinstance(self.id, Address):
                if not isinstance(self.id, (bytes, str)):
                    raise ValueError("validator target: id must be an address")
                self.id = Address(self.id)
        elif not isinstance(self.id, int):
            raise ValueError(f"{self.kind} target: id must be an integer")

    def key_bytes(self) -> bytes:
        """The 33 key bytes of its state entry: code, then 32 bytes (the id, big-endian and
        zero-padded on the left, or the address)."""
        if isinstance(self.id, Address):
            return bytes([_TARGETS[self.kind]]) + bytes(self.id)
        return bytes([_TARGETS[self.kind]]) + bytes(24) + self.id.to_bytes(8, "big")

    def path(self) -> str:
        """The target as one path segment: ``dataset:3``, ``validator:<hex>``."""
        return f"{self.kind}:{self.id}"


class _TargetCodec(Codec[BlockTarget]):
    def write(self, w: Writer, v: BlockTarget) -> None:
        w.u8(_TARGETS[v.kind])
        if isinstance(v.id, Address):
            w.raw(bytes(v.id))
        else:
            w.u64(v.id)

    def read(self, r: Reader) -> BlockTarget:
        code = r.u8()
        if code not in _TARGET_NAMES:
            raise DecodeError(f"block target code {code}")
        kind = _TARGET_NAMES[code]
        return BlockTarget(kind, Address(r.take(32)) if kind == "validator" else r.u64())

    def to_json(self, v: BlockTarget) -> Any:
        return {"kind": v.kind, "id": str(v.id) if isinstance(v.id, Address) else v.id}

    def from_json(self, j: Any) -> BlockTarget:
        kind = j["kind"]
        return BlockTarget(kind, Address.from_hex(j["id"]) if kind == "validator" else j["id"])


@dataclass
class ParamChange:
    """Proposal: set protocol parameters (all or none)."""

    KIND: ClassVar[str] = "param_change"
    changes: list[ParamSet] = field(ListOf(_n("ParamSet")))


@dataclass
class SetBlocked:
    """Proposal: block (``blocked=True``) or unblock a dataset, model or offer, or bar or unbar
    a validator (serde kind ``block``)."""

    KIND: ClassVar[str] = "block"
    target: BlockTarget = field(_TargetCodec())
    blocked: bool = field(BOOL)
    reason: Digest = field(DIGEST)


@dataclass
class TreasurySpend:
    """Proposal: pay ``amount`` from the treasury to ``to``."""

    KIND: ClassVar[str] = "treasury_spend"
    to: Address = field(ADDRESS)
    amount: int = field(AMOUNT)


#: What a proposal does when executed.
ProposalKind = ParamChange | SetBlocked | TreasurySpend
_PROPOSALS: list[type[ParamChange] | type[SetBlocked] | type[TreasurySpend]] = [
    ParamChange,
    SetBlocked,
    TreasurySpend,
]


class _ProposalCodec(Codec[Any]):
    def write(self, w: Writer, v: Any) -> None:
        w.u8(_PROPOSALS.index(type(v)))
        struct_codec(type(v)).write(w, v)

    def read(self, r: Reader) -> Any:
        code = r.u8()
        if code >= len(_PROPOSALS):
            raise DecodeError(f"proposal kind {code}")
        return struct_codec(_PROPOSALS[code]).read(r)

    def to_json(self, v: Any) -> Any:
        return {"kind": v.KIND, **struct_codec(type(v)).to_json(v)}

    def from_json(self, j: Any) -> Any:
        for cls in _PROPOSALS:
            if j["kind"] == cls.KIND:
                return struct_codec(cls).from_json(j)
        raise ValueError(f"unknown proposal kind {j['kind']!r}")


class Choice(str, enum.Enum):
    """A governance vote."""

    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"
    VETO = "veto"


_CHOICES = list(Choice)


class _ChoiceCodec(Codec[Choice]):
    def write(self, w: Writer, v: Choice) -> None:
        w.u8(_CHOICES.index(Choice(v)))

    def read(self, r: Reader) -> Choice:
        code = r.u8()
        if code >= len(_CHOICES):
            raise DecodeError(f"choice {code}")
        return _CHOICES[code]

    def to_json(self, v: Choice) -> Any:
        return Choice(v).value

    def from_json(self, j: Any) -> Choice:
        return Choice(j)


# --- Bodies ---


class TxBody:
    """Base of every transaction body. ``TAG`` is the wire tag, ``TYPE`` the JSON ``"type"``."""

    TAG: ClassVar[int]
    TYPE: ClassVar[str]

    def encode(self) -> bytes:
        """``tag || body`` (what follows the fee in a transaction)."""
        w = Writer()
        _BODY.write(w, self)
        return w.to_bytes()

    def to_json(self) -> dict[str, Any]:
        """The node's JSON form: ``{"type": ..., fields...}``."""
        return _BODY.to_json(self)  # type: ignore[no-any-return]


_BODIES: dict[int, type[TxBody]] = {}
B = TypeVar("B", bound=type[TxBody])


def _body(tag: int, name: str) -> Any:
    def register(cls: B) -> B:
        if tag in _BODIES:
            raise AssertionError(f"tag {tag} registered twice")
        cls.TAG = tag
        cls.TYPE = name
        _BODIES[tag] = cls
        return cls

    return register


def body_types() -> dict[int, type[TxBody]]:
    """Every body class by wire tag."""
    return dict(_BODIES)


@_body(0, "transfer")
@dataclass
class Transfer(TxBody):
    """Move ``amount`` base units to ``to`` (created if new)."""

    to: Address = field(ADDRESS)
    amount: int = field(AMOUNT)


@_body(1, "stake")
@dataclass
class Stake(TxBody):
    """Lock funds as validator stake."""

    amount: int = field(AMOUNT)


@_body(2, "unstake")
@dataclass
class Unstake(TxBody):
    """Start unbonding stake."""

    amount: int = field(AMOUNT)


@_body(3, "dataset_register")
@dataclass
class DatasetRegister(TxBody):
    """Register a dataset commitment with its consent policy (the sender owns it)."""

    commitment: Digest = field(DIGEST)
    samples: int = field(U64)
    schema: str = field(STR)
    policy: ConsentPolicy = field(_n("ConsentPolicy"))


@_body(4, "consent_update")
@dataclass
class ConsentUpdate(TxBody):
    """Replace a dataset's consent policy (owner only)."""

    dataset: int = field(U64)
    policy: ConsentPolicy = field(_n("ConsentPolicy"))


@_body(5, "consent_revoke")
@dataclass
class ConsentRevoke(TxBody):
    """Revoke a dataset's consent for good (owner only)."""

    dataset: int = field(U64)


@_body(6, "task_create")
@dataclass
class TaskCreate(TxBody):
    """Create a training task, moving ``reward`` into escrow."""

    purpose: str = field(STR)
    model_spec: Digest = field(DIGEST)
    datasets: list[int] = field(ListOf(U64))
    rounds: int = field(U32)
    epsilon: int = field(U64)
    epsilon_schedule: list[EpsilonStep] = field(ListOf(_n("EpsilonStep")))
    delta: int = field(U64)
    reward: int = field(AMOUNT)


@_body(7, "task_cancel")
@dataclass
class TaskCancel(TxBody):
    """Cancel an open task and refund its escrow (creator only)."""

    task: int = field(U64)


@_body(8, "model_register")
@dataclass
class ModelRegister(TxBody):
    """Register a model produced by a task."""

    model_hash: Digest = field(DIGEST)
    task: int = field(U64)
    parent: int | None = field(Opt(U64))
    metrics: list[Metric] = field(ListOf(_n("Metric")))


@_body(9, "task_set_coordinator")
@dataclass
class TaskSetCoordinator(TxBody):
    """Designate the address that runs a task's rounds (creator only)."""

    task: int = field(U64)
    coordinator: Address = field(ADDRESS)


@_body(10, "task_commit_validation")
@dataclass
class TaskCommitValidation(TxBody):
    """Commit to a task's validation data before its first round (creator only)."""

    task: int = field(U64)
    commitment: Digest = field(DIGEST)


@_body(11, "round_open")
@dataclass
class RoundOpen(TxBody):
    """Open a task's next round (coordinator only)."""

    task: int = field(U64)
    round: int = field(U32)
    global_model: Digest = field(DIGEST)
    count: int = field(U32)
    secagg: SecAggParams = field(_n("SecAggParams"))
    delta: int = field(U64)


@_body(12, "round_result")
@dataclass
class RoundResult(TxBody):
    """Record a round's result and close it (coordinator only)."""

    task: int = field(U64)
    round: int = field(U32)
    masked_updates: list[Digest] = field(ListOf(DIGEST))
    survivors: list[int] = field(ListOf(U64))
    unmasking: Digest = field(DIGEST)
    aggregate: Digest = field(DIGEST)
    new_model: Digest = field(DIGEST)
    scores: list[Score] = field(ListOf(_n("Score")))


@_body(13, "task_close")
@dataclass
class TaskClose(TxBody):
    """Close a task, revealing its validation data."""

    task: int = field(U64)
    validation_salt: Digest = field(DIGEST)
    validation_data: Digest = field(DIGEST)
    parent: int | None = field(Opt(U64))
    metrics: list[Metric] = field(ListOf(_n("Metric")))


@_body(14, "round_expire")
@dataclass
class RoundExpire(TxBody):
    """Close a round past its deadline as failed (anyone)."""

    task: int = field(U64)
    round: int = field(U32)


@_body(15, "validator_declare")
@dataclass
class ValidatorDeclare(TxBody):
    """Declare the consensus key (and p2p address) the sender's stake validates with."""

    key: Address = field(ADDRESS)
    p2p: str = field(STR)
    possession: bytes = field(SIG)

    @staticmethod
    def possession_message(chain_id: str, account: bytes) -> bytes:
        """What the node key signs: ``"deai/validator-key/v1" || chain_id || account``."""
        w = Writer()
        w.raw(POSSESSION_DOMAIN)
        w.string(chain_id)
        w.raw(bytes(account))
        return w.to_bytes()

    @classmethod
    def new(cls, chain_id: str, account: bytes, node_key: Key, p2p: str = "") -> ValidatorDeclare:
        """A declaration of ``node_key`` for ``account`` on ``chain_id``."""
        sig = node_key.sign(cls.possession_message(chain_id, account))
        return cls(key=node_key.address, p2p=p2p, possession=sig)


@_body(16, "offer_create")
@dataclass
class OfferCreate(TxBody):
    """Offer a registered model's quantized blob for paid queries, locking a bond."""

    model: int = field(U64)
    quant_hash: Digest = field(DIGEST)
    ops: int = field(U64)
    price_per_query: int = field(AMOUNT)
    bond: int = field(AMOUNT)
    endpoint: str = field(STR)
    royalty_bps: int = field(U32)


@_body(17, "offer_update")
@dataclass
class OfferUpdate(TxBody):
    """Change an offer's price or endpoint (``None`` keeps it), or add to its bond."""

    offer: int = field(U64)
    price_per_query: int | None = field(Opt(AMOUNT), default=None)
    endpoint: str | None = field(Opt(STR), default=None)
    bond_top_up: int = field(AMOUNT, default=0)


@_body(18, "offer_withdraw")
@dataclass
class OfferWithdraw(TxBody):
    """Withdraw an offer (provider only)."""

    offer: int = field(U64)


@_body(19, "channel_open")
@dataclass
class ChannelOpen(TxBody):
    """Open a payment channel to an offer's provider, locking ``deposit`` until
    ``expiry_height``."""

    offer: int = field(U64)
    deposit: int = field(AMOUNT)
    expiry_height: int = field(U64)


@_body(20, "channel_top_up")
@dataclass
class ChannelTopUp(TxBody):
    """Add to a channel's deposit or extend its expiry (payer only)."""

    channel: int = field(U64)
    amount: int = field(AMOUNT)
    expiry_height: int = field(U64)


@_body(21, "channel_claim")
@dataclass
class ChannelClaim(TxBody):
    """Redeem a payer's cumulative voucher (provider only)."""

    channel: int = field(U64)
    voucher: SignedVoucher = field(struct_codec(SignedVoucher))


@_body(22, "channel_close")
@dataclass
class ChannelClose(TxBody):
    """Close a channel and refund the unclaimed deposit."""

    channel: int = field(U64)


@_body(23, "receipt_dispute")
@dataclass
class ReceiptDispute(TxBody):
    """Dispute a signed query receipt, carrying the input and the model blob."""

    receipt: SignedQueryReceipt = field(struct_codec(SignedQueryReceipt))
    input: bytes = field(BYTES)
    model: bytes = field(BYTES)


@_body(24, "round_challenge")
@dataclass
class RoundChallenge(TxBody):
    """Challenge one claim of a round's result, locking a deposit."""

    task: int = field(U64)
    round: int = field(U32)
    claim: Claim = field(_ClaimCodec())


@_body(25, "challenge_vote")
@dataclass
class ChallengeVote(TxBody):
    """Vote on a pending round challenge (validators)."""

    task: int = field(U64)
    challenge: int = field(U32)
    upheld: bool = field(BOOL)


@_body(26, "propose")
@dataclass
class Propose(TxBody):
    """Put a parameter change, a block decision or a treasury spend to a vote."""

    kind: ParamChange | SetBlocked | TreasurySpend = field(_ProposalCodec())
    deposit: int = field(AMOUNT)
    description: Digest = field(DIGEST)


@_body(27, "vote")
@dataclass
class Vote(TxBody):
    """Vote on an open proposal."""

    proposal: int = field(U64)
    choice: Choice = field(_ChoiceCodec())


@_body(28, "execute")
@dataclass
class Execute(TxBody):
    """Carry out a passed proposal after its timelock (anyone)."""

    proposal: int = field(U64)


@_body(29, "delegate")
@dataclass
class Delegate(TxBody):
    """Bond stake to a validator without running a node."""

    validator: Address = field(ADDRESS)
    amount: int = field(AMOUNT)


@_body(30, "undelegate")
@dataclass
class Undelegate(TxBody):
    """Start unbonding a delegation."""

    validator: Address = field(ADDRESS)
    amount: int = field(AMOUNT)


class _BodyCodec(Codec[TxBody]):
    """``tag || body``; JSON ``{"type": ..., fields...}``."""

    def write(self, w: Writer, v: TxBody) -> None:
        w.u8(v.TAG)
        struct_codec(type(v)).write(w, v)

    def read(self, r: Reader) -> TxBody:
        tag = r.u8()
        cls = _BODIES.get(tag)
        if cls is None:
            raise DecodeError(f"unknown transaction tag {tag}")
        return struct_codec(cls).read(r)

    def to_json(self, v: TxBody) -> Any:
        return {"type": v.TYPE, **struct_codec(type(v)).to_json(v)}

    def from_json(self, j: Any) -> TxBody:
        for cls in _BODIES.values():
            if j.get("type") == cls.TYPE:
                return struct_codec(cls).from_json(j)
        raise ValueError(f"unknown transaction type {j.get('type')!r}")


_BODY = _BodyCodec()


# --- Envelope ---


@dataclass
class Tx:
    """The unsigned transaction."""

    chain_id: str = field(STR)
    sender: Address = field(ADDRESS)
    nonce: int = field(U64)
    fee: int = field(AMOUNT)
    body: TxBody = field(_BODY)

    def encode(self) -> bytes:
        """The canonical bytes."""
        w = Writer()
        struct_codec(Tx).write(w, self)
        return w.to_bytes()

    def signing_bytes(self) -> bytes:
        """What the signature covers: ``"deai/tx/v1" || encoding``."""
        return SIGNING_DOMAIN + self.encode()

    def sign(self, key: Key) -> SignedTx:
        """Signs with ``key``, which must be the sender's."""
        if key.address != self.sender:
            raise ValueError(f"the key of {key.address} cannot sign for sender {self.sender}")
        return SignedTx(tx=self, signature=key.sign(self.signing_bytes()))


@dataclass
class SignedTx:
    """A transaction with its ed25519 signature: what ``POST /v1/txs`` takes (hex of
    :meth:`encode`)."""

    tx: Tx = field(struct_codec(Tx))
    signature: bytes = field(SIG)

    def encode(self) -> bytes:
        """The canonical bytes."""
        w = Writer()
        struct_codec(SignedTx).write(w, self)
        return w.to_bytes()

    def id(self) -> Digest:
        """The transaction id: BLAKE3 of :meth:`encode`."""
        return Digest.hash(self.encode())

    def verify_signature(self) -> bool:
        """Whether the sender signed it."""
        return verify(self.tx.sender, self.tx.signing_bytes(), self.signature)

    @classmethod
    def decode(cls, data: bytes) -> SignedTx:
        """Reads canonical bytes (e.g. a block's ``txs`` entry); trailing bytes are an error.
        Length bounds are the chain's, checked by the node, not here."""
        r = Reader(data)
        v = struct_codec(cls).read(r)
        r.finish()
        return v

    @classmethod
    def from_hex(cls, text: str) -> SignedTx:
        """:meth:`decode` of hex text."""
        return cls.decode(bytes.fromhex(text))

    def to_json(self) -> dict[str, Any]:
        """The node's JSON form (serde of ``SignedTx``)."""
        return struct_codec(SignedTx).to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, j: Any) -> SignedTx:
        """From the node's JSON form."""
        return struct_codec(cls).from_json(j)
