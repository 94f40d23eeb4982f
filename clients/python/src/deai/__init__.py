"""deai: a Python client for deai nodes.

* :class:`Key` — ed25519 keys and the key files the Rust CLI reads and writes;
  :class:`Address`, :class:`Digest`.
* :mod:`deai.tx` — every transaction kind, :class:`Tx`/:class:`SignedTx`, canonical encoding,
  signing and ids byte-identical to the Rust ledger.
* :class:`Client` — the node's HTTP API: state queries, submission, finality, following blocks
  and events, inclusion proofs (:func:`verify_proof`).
* :mod:`deai.payment`, :mod:`deai.inference` — vouchers, receipts and paid inference through a
  payment channel (:class:`PaidSession`).
* :mod:`deai.frames` — pandas DataFrames of tasks, rounds, datasets and blocks
  (``pip install 'deai[pandas]'``).

See docs/python.md in the deai repository.
"""

from .client import (
    AccountState,
    ApiError,
    Block,
    Client,
    Event,
    ProofAnswer,
    Status,
    TxFailed,
    TxStatus,
)
from .codec import DecodeError
from .keys import Key, KeyFileError, verify
from .payment import (
    QueryReceipt,
    ReceiptBatch,
    SignedLeaves,
    SignedQueryReceipt,
    SignedVoucher,
    Voucher,
)
from .proof import Proof, ProofError, StateKey, verify_account_entry, verify_proof
from .tx import *  # noqa: F403 - every transaction kind is part of the API
from .tx import __all__ as _tx_all
from .types import TOKEN, Address, Digest, TxId

__version__ = "0.1.0"

__all__ = [
    "TOKEN",
    "AccountState",
    "Address",
    "ApiError",
    "Block",
    "Client",
    "DecodeError",
    "Digest",
    "Event",
    "Key",
    "KeyFileError",
    "Proof",
    "ProofAnswer",
    "ProofError",
    "QueryReceipt",
    "ReceiptBatch",
    "SignedLeaves",
    "SignedQueryReceipt",
    "SignedVoucher",
    "StateKey",
    "Status",
    "TxFailed",
    "TxId",
    "TxStatus",
    "Voucher",
    "verify",
    "verify_account_entry",
    "verify_proof",
    *_tx_all,
]


def __getattr__(name: str) -> object:
    # The inference module is imported on first use (it needs nothing extra, but keeps
    # `import deai` light).
    if name in ("PaidSession", "OfferInfo", "Output"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'deai' has no attribute {name!r}")
