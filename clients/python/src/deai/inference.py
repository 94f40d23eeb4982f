"""Buying inference through a payment channel (docs/inference.md, "Provider role").

A payer opens a channel to an offer (``ChannelOpen``), then sends queries to the offer's
provider node with a cumulative voucher in a header::

    POST /v1/infer/{offer}
      deai-voucher: hex(SignedVoucher)   the payer's cumulative voucher for the channel
      deai-sign: 1                       (optional) sign every pending receipt now
      body: n x input                    n inputs of the model's input length
    200  deai-channel-spent: decimal
         body: first_sequence u64 || n u32 || n x (u32 length || output)
             || 0u8 | 1u8 || k u32 || k x leaf[32] || signature[64]

The answer carries outputs, not receipts: the payer rebuilds each receipt (chain, offer,
channel, the offer's model hash, BLAKE3 of its input, the output, the voucher amount it sent,
sequence ``first_sequence + i``) and, when the answer closes a signed batch, checks the
provider's one signature over the Merkle root of the batch's leaves it computes itself.

:class:`PaidSession` does that. It pays exactly what each request costs (a new voucher per
request, which also makes the provider sign the batch with that answer), so every answer's
receipt is checked before the next request.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .client import ApiError, Client
from .codec import DecodeError
from .keys import Key
from .payment import RECEIPT_BATCH_MAX, QueryReceipt, SignedLeaves, SignedQueryReceipt, Voucher
from .tx import ChannelOpen
from .types import Address, Digest

__all__ = [
    "SIGN_HEADER",
    "SPENT_HEADER",
    "VOUCHER_HEADER",
    "Answer",
    "BadAnswer",
    "OfferInfo",
    "Output",
    "PaidSession",
    "ProviderAnswer",
]

#: Header carrying the voucher (hex of its canonical encoding).
VOUCHER_HEADER = "deai-voucher"
#: Header carrying what the channel's answered queries cost so far (decimal base units).
SPENT_HEADER = "deai-channel-spent"
#: Header asking the provider to sign every pending receipt of the channel with this answer.
SIGN_HEADER = "deai-sign"


class BadAnswer(Exception):
    """A provider's answer that does not check: malformed, reused sequences, or a signed batch
    that is not the provider's or leaves out an answer it was asked to sign."""


@dataclass
class Output:
    """A model's answer (``deai_infer::Output::to_bytes``: class u32 LE, count u32 LE, count
    logits i32 LE)."""

    cls: int
    logits: list[int]

    @classmethod
    def from_bytes(cls, data: bytes) -> Output:
        """Parses an output, checking its length and that the class is the first argmax."""
        if len(data) < 8:
            raise DecodeError(f"output has {len(data)} bytes, expected at least 8")
        klass, count = struct.unpack("<II", data[:8])
        if count == 0 or len(data) != 8 + 4 * count:
            raise DecodeError(f"output of {len(data)} bytes for {count} logits")
        logits = list(struct.unpack(f"<{count}i", data[8:]))
        if klass != logits.index(max(logits)):
            raise DecodeError(f"class {klass} is not the argmax of the logits")
        return cls(klass, logits)


@dataclass
class OfferInfo:
    """``GET /v1/infer/{offer}`` on the provider: what the offer takes."""

    offer: int
    provider: Address
    model_hash: Digest
    arch: str
    input_len: int
    input_max: int
    price_per_query: int
    batch_max: int

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> OfferInfo:
        """From the provider's answer."""
        return cls(
            offer=int(j["offer"]),
            provider=Address.from_hex(j["provider"]),
            model_hash=Digest.from_hex(j["model_hash"]),
            arch=j["arch"],
            input_len=int(j["input_len"]),
            input_max=int(j["input_max"]),
            price_per_query=int(j["price_per_query"]),
            batch_max=int(j["batch_max"]),
        )


@dataclass
class ProviderAnswer:
    """The body of a provider's ``200``: outputs and, when it closes one, a signed batch."""

    first_sequence: int
    outputs: list[bytes]
    signed: SignedLeaves | None

    @classmethod
    def decode(cls, data: bytes, expected: int, output_max: int = 2048) -> ProviderAnswer:
        """Reads an answer that should hold ``expected`` outputs of at most ``output_max``
        bytes; refuses anything else."""
        pos = 0

        def take(n: int, what: str) -> bytes:
            nonlocal pos
            if len(data) - pos < n:
                raise BadAnswer(f"{what} needs {n} bytes, {len(data) - pos} left")
            out = data[pos : pos + n]
            pos += n
            return out

        first = struct.unpack(">Q", take(8, "the first sequence"))[0]
        n = struct.unpack(">I", take(4, "the output count"))[0]
        if n != expected:
            raise BadAnswer(f"{n} outputs for {expected} queries")
        outputs = []
        for i in range(n):
            length = struct.unpack(">I", take(4, "an output length"))[0]
            if length > output_max:
                raise BadAnswer(f"output {i} has {length} bytes, above {output_max}")
            outputs.append(take(length, "an output"))
        flag = take(1, "the signature flag")[0]
        signed = None
        if flag == 1:
            k = struct.unpack(">I", take(4, "the leaf count"))[0]
            if not 0 < k <= RECEIPT_BATCH_MAX:
                raise BadAnswer(f"a signed batch of {k} leaves")
            raw = take(32 * k, "the leaves")
            leaves = [Digest(raw[i : i + 32]) for i in range(0, len(raw), 32)]
            signed = SignedLeaves(leaves, take(64, "the signature"))
        elif flag != 0:
            raise BadAnswer(f"signature flag {flag}")
        if pos != len(data):
            raise BadAnswer(f"{len(data) - pos} trailing bytes")
        return cls(first, outputs, signed)


@dataclass
class Answer:
    """One paid query's answer: the raw output, its parsed form and the receipt the payer
    rebuilt for it (signed once its batch arrived: :meth:`PaidSession.signed_receipt`)."""

    output_bytes: bytes
    output: Output
    receipt: QueryReceipt


class PaidSession:
    """Buys answers from one offer's provider through one channel.

    ``client`` reads the chain (the offer, the channel, the chain id); ``provider_url`` is the
    provider node's API (by default the offer's ``endpoint``); ``key`` is the channel's payer.
    """

    def __init__(
        self,
        client: Client,
        key: Key,
        offer_id: int,
        channel_id: int,
        provider_url: str | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.offer = client.offer(offer_id)
        self.channel = client.channel(channel_id)
        if Address.from_hex(self.channel["payer"]) != key.address:
            raise ValueError(
                f"channel {channel_id} is paid by {self.channel['payer']}, not this key"
            )
        if int(self.channel["offer"]) != offer_id:
            raise ValueError(f"channel {channel_id} pays offer {self.channel['offer']}")
        self.chain_id = client.chain_id()
        self.provider = Address.from_hex(self.offer["provider"])
        self.model_hash = Digest.from_hex(self.offer["quant_hash"])
        self.price = int(self.offer["price_per_query"])
        self.deposit = int(self.channel["deposit"])
        self.provider_client = Client(
            _base_url(provider_url or self.offer["endpoint"]), client.timeout
        )
        #: What the channel's answered queries cost so far (as this session counts).
        self.spent = 0
        self._last_sequence: int | None = None
        self._unsigned: dict[bytes, QueryReceipt] = {}
        self._signed: dict[int, tuple[SignedLeaves, int, QueryReceipt]] = {}

    @classmethod
    def open(
        cls,
        client: Client,
        key: Key,
        offer_id: int,
        deposit: int,
        blocks: int = 1_000,
        provider_url: str | None = None,
    ) -> PaidSession:
        """Opens a channel of ``deposit`` to ``offer_id`` expiring ``blocks`` from now (a
        ``ChannelOpen`` transaction, waited for) and returns a session on it."""
        height = client.status().height
        status = client.send(
            key, ChannelOpen(offer=offer_id, deposit=deposit, expiry_height=height + blocks)
        )
        channel_id = next((int(e["id"]) for e in status.events if e.type == "channel_opened"), None)
        if channel_id is None:
            raise RuntimeError(f"ChannelOpen finalized without a channel_opened event: {status}")
        return cls(client, key, offer_id, channel_id, provider_url)

    def info(self) -> OfferInfo:
        """What the offer takes (input length, price, batch size)."""
        return OfferInfo.from_json(self.provider_client.get_json(f"/v1/infer/{self.offer['id']}"))

    def voucher(self, amount: int) -> bytes:
        """The canonical bytes of a signed cumulative voucher for ``amount``."""
        v = Voucher(
            chain_id=self.chain_id, channel_id=int(self.channel["id"]), cumulative_amount=amount
        )
        return v.sign(self.key).encode()

    def query(self, inputs: list[bytes], sign: bool = True) -> list[Answer]:
        """Pays for ``inputs`` (each the model's input bytes) and sends them in one request;
        the checked answers, in order. With ``sign`` (the default) the provider signs every
        pending receipt with this answer, and the signature is checked before returning."""
        need = self.spent + self.price * len(inputs)
        if need > self.deposit:
            raise ValueError(f"the channel's deposit {self.deposit} does not cover {need}")
        headers = {
            VOUCHER_HEADER: self.voucher(need).hex(),
            "content-type": "application/octet-stream",
        }
        if sign:
            headers[SIGN_HEADER] = "1"
        path = f"/v1/infer/{self.offer['id']}"
        try:
            _, resp_headers, body = self.provider_client.request(
                "POST", path, b"".join(inputs), headers
            )
        except ApiError as e:
            spent = e.headers.get(SPENT_HEADER)
            if e.code == "voucher_too_low" and spent is not None and int(spent) > self.spent:
                self.spent = int(spent)  # the provider counted answers this session did not
                return self.query(inputs, sign)
            raise
        answers = self._check(inputs, body, need, sign)
        spent = resp_headers.get(SPENT_HEADER)
        self.spent = max(need, int(spent)) if spent is not None else need
        return answers

    def settle(self) -> None:
        """Has the provider sign every answer of this session not signed yet."""
        if self._unsigned:
            self.query([], sign=True)

    def signed_receipt(self, answer: Answer) -> SignedQueryReceipt | None:
        """The receipt of ``answer`` with its inclusion proof and the provider's signature
        (what a ``ReceiptDispute`` carries), once its batch arrived."""
        got = self._signed.get(answer.receipt.sequence)
        if got is None:
            return None
        batch, position, receipt = got
        return batch.receipt(receipt, position)

    @property
    def unsigned(self) -> int:
        """Answers whose signed batch has not arrived."""
        return len(self._unsigned)

    def _check(self, inputs: list[bytes], body: bytes, amount: int, asked: bool) -> list[Answer]:
        answer = ProviderAnswer.decode(body, len(inputs))
        first = answer.first_sequence
        if inputs and self._last_sequence is not None and first <= self._last_sequence:
            raise BadAnswer(f"sequence {first} was used before in this session")
        out = []
        for i, (data, inp) in enumerate(zip(answer.outputs, inputs, strict=True)):
            try:
                output = Output.from_bytes(data)
            except DecodeError as e:
                raise BadAnswer(f"output {i}: {e}") from e
            receipt = QueryReceipt(
                chain_id=self.chain_id,
                offer_id=int(self.offer["id"]),
                channel_id=int(self.channel["id"]),
                sequence=first + i,
                input_hash=Digest.hash(inp),
                output=data,
                model_hash=self.model_hash,
                voucher_amount=amount,
            )
            self._unsigned[bytes(receipt.leaf())] = receipt
            out.append(Answer(data, output, receipt))
        if out:
            self._last_sequence = out[-1].receipt.sequence
        if answer.signed is not None:
            if answer.signed.verify(self.provider) is None:
                raise BadAnswer("the signed batch is not signed by the offer's provider")
            for position, leaf in enumerate(answer.signed.leaves):
                mine = self._unsigned.pop(bytes(leaf), None)
                if mine is not None:
                    self._signed[mine.sequence] = (answer.signed, position, mine)
        if asked:
            missing = [a.receipt.sequence for a in out if bytes(a.receipt.leaf()) in self._unsigned]
            if missing:
                raise BadAnswer(f"asked to sign, the provider left out sequences {missing}")
        return out


def _base_url(endpoint: str) -> str:
    """An offer's endpoint (``http://host:port/v1/infer/7`` or ``http://host:port``) as a
    base URL."""
    i = endpoint.find("/v1/")
    return endpoint[:i] if i >= 0 else endpoint.rstrip("/")
