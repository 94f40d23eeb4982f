"""A client of a deai node's HTTP API (docs/api.md; ``GET /v1/openapi.json``).

Every method is one or a few HTTP requests with the standard library (``urllib``). Failures the
node reports come back as :class:`ApiError` carrying its stable ``code`` and its ``message``.

Answers:

* :meth:`Client.status`, :meth:`Client.account`, :meth:`Client.tx_status`, :meth:`Client.block`
  and :meth:`Client.proof` return dataclasses (:class:`Status`, :class:`AccountState`,
  :class:`TxStatus`, :class:`Block`, :class:`ProofAnswer`), each keeping the full JSON in
  ``raw``;
* ledger entities (datasets, tasks, models, offers, channels, proposals) are the ledger's own
  JSON objects, returned as ``dict`` exactly as the node sends them: amounts are decimal
  strings, hashes and addresses lowercase hex, fixed-point values integers (ε × 10⁶,
  δ × 10¹², metrics and scores × 10⁶). Their fields are listed in docs/ledger.md and in the
  node's OpenAPI document; the ones this package reads (for the pandas frames) are named in
  docs/python.md.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .keys import Key
from .proof import Proof, ProofError, verify_account_entry, verify_proof
from .tx import SignedTx, Tx, TxBody
from .types import Address, Digest

__all__ = [
    "ROUTES",
    "AccountState",
    "ApiError",
    "Block",
    "Client",
    "Event",
    "ProofAnswer",
    "Status",
    "TxFailed",
    "TxStatus",
]


#: Every validator route this client uses (``(method, OpenAPI path)``); the live test checks
#: each against the node's ``GET /v1/openapi.json``, so a renamed route fails there.
ROUTES: tuple[tuple[str, str], ...] = (
    ("get", "/v1/status"),
    ("get", "/v1/genesis"),
    ("get", "/v1/validators"),
    ("get", "/v1/identity"),
    ("get", "/v1/blocks/{height}"),
    ("get", "/v1/accounts/{addr}"),
    ("get", "/v1/datasets"),
    ("get", "/v1/datasets/{id}"),
    ("get", "/v1/tasks"),
    ("get", "/v1/tasks/{id}"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{id}"),
    ("get", "/v1/offers"),
    ("get", "/v1/offers/{id}"),
    ("get", "/v1/channels"),
    ("get", "/v1/channels/{id}"),
    ("get", "/v1/proposals"),
    ("get", "/v1/proposals/{id}"),
    ("get", "/v1/governance"),
    ("get", "/v1/proofs/{kind}/{id}"),
    ("put", "/v1/blobs/{hash}"),
    ("get", "/v1/blobs/{hash}"),
    ("post", "/v1/txs"),
    ("post", "/v1/txs/batch"),
    ("get", "/v1/txs/{id}"),
)


class ApiError(Exception):
    """A failure the node answered: HTTP ``status``, stable ``code`` (``bad_hex``,
    ``insufficient_funds``, ``nonce_replayed``, ``task_not_found``, ...) and ``message``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ):
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


class TxFailed(Exception):
    """A transaction that did not apply: dropped from the mempool (``state == "rejected"``) or
    finalized but refused by the ledger (``state == "failed"``), with the ledger's ``code``."""

    def __init__(self, tx_id: Digest, status: TxStatus, code: str, message: str) -> None:
        super().__init__(f"transaction {tx_id} {status.status}: {code}: {message}")
        self.tx_id = tx_id
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Status:
    """``GET /v1/status``."""

    chain_id: str
    height: int
    state_root: Digest
    peers: int
    mempool_size: int
    last_finality_latency_ms: int | None
    fee_min: int
    epoch: int
    validators: int
    validator: bool
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> Status:
        """From the node's answer."""
        return cls(
            chain_id=j["chain_id"],
            height=int(j["height"]),
            state_root=Digest.from_hex(j["state_root"]),
            peers=int(j["peers"]),
            mempool_size=int(j["mempool_size"]),
            last_finality_latency_ms=j.get("last_finality_latency_ms"),
            fee_min=int(j["fee_min"]),
            epoch=int(j.get("epoch", 0)),
            validators=int(j.get("validators", 0)),
            validator=bool(j.get("validator", False)),
            raw=j,
        )


@dataclass
class AccountState:
    """``GET /v1/accounts/{address}``: an account at a height (all zero when never seen)."""

    address: Address
    height: int
    balance: int
    nonce: int
    staked: int
    #: ``[{"amount": "<decimal>", "release_height": int}, ...]``
    unbonding: list[dict[str, Any]]
    #: ``{"key": "<hex>", "p2p": "host:port"}`` when the account declared a validator key.
    validator: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> AccountState:
        """From the node's answer."""
        a = j["account"]
        return cls(
            address=Address.from_hex(j["address"]),
            height=int(j["height"]),
            balance=int(a["balance"]),
            nonce=int(a["nonce"]),
            staked=int(a["staked"]),
            unbonding=list(a.get("unbonding", [])),
            validator=a.get("validator"),
            raw=j,
        )


@dataclass
class Event:
    """A ledger event as the node shows it: ``type`` (``transferred``, ``dataset_registered``,
    ...) and its fields; ``event["field"]`` reads one."""

    type: str
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A field, or ``default``."""
        return self.data.get(key, default)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> Event:
        """From the node's JSON (``{"type": ..., fields...}``)."""
        return cls(type=str(j.get("type")), data=dict(j))


@dataclass
class TxStatus:
    """``GET /v1/txs/{id}``: ``pending``, ``finalized`` (``applied`` says whether the ledger
    applied it; ``receipt`` has its result, events and fee) or ``rejected`` (dropped from the
    mempool, with ``code`` and ``reason``)."""

    status: str
    applied: bool | None = None
    height: int | None = None
    index: int | None = None
    receipt: dict[str, Any] | None = None
    code: str | None = None
    reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> TxStatus:
        """From the node's answer."""
        return cls(
            status=j["status"],
            applied=j.get("applied"),
            height=j.get("height"),
            index=j.get("index"),
            receipt=j.get("receipt"),
            code=j.get("code"),
            reason=j.get("reason"),
            raw=j,
        )

    @property
    def events(self) -> list[Event]:
        """The events the transaction produced (none unless applied)."""
        if not self.receipt:
            return []
        return [Event.from_json(e) for e in self.receipt.get("events", [])]

    @property
    def error(self) -> dict[str, Any] | None:
        """The ledger's refusal (``{"code": ..., ...}``) of a finalized, unapplied one."""
        if not self.receipt:
            return None
        result = self.receipt.get("result", {})
        return result.get("error") if isinstance(result, dict) else None


@dataclass
class Block:
    """``GET /v1/blocks/{height}``, with its transactions decoded and its events typed."""

    height: int
    digest: Digest
    parent: Digest
    proposer: Address
    timestamp_ms: int
    tx_ids: list[Digest]
    #: The block's transactions, decoded from their canonical bytes.
    txs: list[SignedTx]
    #: One receipt per transaction (``{"tx_id", "result", "events", "fee_paid"}``).
    receipts: list[dict[str, Any]]
    #: Every event of the block, in order.
    events: list[Event]
    parent_state_root: Digest
    state_root: Digest
    finalized_at_ms: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> Block:
        """From the node's answer."""
        return cls(
            height=int(j["height"]),
            digest=Digest.from_hex(j["digest"]),
            parent=Digest.from_hex(j["parent"]),
            proposer=Address.from_hex(j["proposer"]),
            timestamp_ms=int(j["timestamp_ms"]),
            tx_ids=[Digest.from_hex(t) for t in j["tx_ids"]],
            txs=[SignedTx.from_hex(t) for t in j["txs"]],
            receipts=list(j["receipts"]),
            events=[Event.from_json(e) for e in j["events"]],
            parent_state_root=Digest.from_hex(j["parent_state_root"]),
            state_root=Digest.from_hex(j["state_root"]),
            finalized_at_ms=int(j["finalized_at_ms"]),
            raw=j,
        )


@dataclass
class ProofAnswer:
    """``GET /v1/proofs/{kind}/{id}``: the proof of one entry against the root at ``height``.

    :meth:`verify` checks the proof against :attr:`root` — which came from the same answer.
    Checking that the root is the chain's (the finalization certificate of block
    ``height + 1``) is out of this package's scope (docs/python.md)."""

    height: int
    root: Digest
    proof: Proof
    #: The entry's JSON (an account, dataset, ...), as read with the proof.
    entry: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> ProofAnswer:
        """From the node's answer."""
        return cls(
            height=int(j["height"]),
            root=Digest.from_hex(j["root"]),
            proof=Proof.from_json(j["proof"]),
            entry=j.get("entry"),
            raw=j,
        )

    def verify(self, root: bytes | None = None) -> None:
        """Checks the proof against ``root`` (default: the answer's own :attr:`root`), and for
        an account that the entry's fields are the committed bytes. Raises
        :class:`~deai.proof.ProofError`."""
        root = self.root if root is None else root
        if self.proof.key.kind == "account" and self.entry is not None:
            verify_account_entry(root, self.proof, self.entry)
        else:
            verify_proof(root, self.proof)


class Client:
    """A node's API at ``url`` (e.g. ``http://127.0.0.1:7650``).

    Reading::

        c = Client("http://127.0.0.1:7650")
        c.status().height
        c.account(addr).balance
        c.task(1)["round_log"]

    Writing: :meth:`send` builds, signs, submits and waits for finality in one call (chain id
    and fee from :meth:`status`, nonce from :meth:`account`)::

        c.send(key, Transfer(to=other, amount=10**18))
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._chain_id: str | None = None
        self._identity: dict[str, Any] | None = None

    # --- HTTP ---

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request: ``(status, headers, body)``; an answer of 400 or more raises
        :class:`ApiError` with the node's code and message."""
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            data = e.read()
            hdrs = {k.lower(): v for k, v in (e.headers or {}).items()}
            raise _api_error(e.code, data, hdrs) from None

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """``GET path`` (with ``query`` parameters whose value is not ``None``) as JSON."""
        if query:
            q = {k: str(v) for k, v in query.items() if v is not None}
            if q:
                path += "?" + urllib.parse.urlencode(q)
        _, _, data = self.request("GET", path, headers={"accept": "application/json"})
        return json.loads(data)

    def post_json(self, path: str, body: Any) -> Any:
        """``POST path`` with a JSON body; the JSON answer."""
        _, _, data = self.request(
            "POST",
            path,
            json.dumps(body).encode(),
            {"content-type": "application/json", "accept": "application/json"},
        )
        return json.loads(data)

    # --- Chain ---

    def status(self) -> Status:
        """The node's chain id, height, state root, fee and validator facts."""
        s = Status.from_json(self.get_json("/v1/status"))
        self._chain_id = s.chain_id
        return s

    def chain_id(self) -> str:
        """The chain id (read once, then remembered)."""
        if self._chain_id is None:
            self.status()
        assert self._chain_id is not None
        return self._chain_id

    def genesis(self) -> dict[str, Any]:
        """The genesis document."""
        return dict(self.get_json("/v1/genesis"))

    def validators(self) -> dict[str, Any]:
        """The validator set of the next block's epoch, the next one, and the candidates."""
        return dict(self.get_json("/v1/validators"))

    def openapi(self) -> dict[str, Any]:
        """The node's OpenAPI document."""
        return dict(self.get_json("/v1/openapi.json"))

    def block(self, height: int) -> Block:
        """The finalized block at ``height`` (``ApiError`` ``block_not_found`` above the tip)."""
        return Block.from_json(self.get_json(f"/v1/blocks/{height}"))

    def follow(
        self,
        start: int | None = None,
        poll_s: float = 0.5,
        stop: int | None = None,
        include_empty: bool = True,
    ) -> Iterator[Block]:
        """Yields finalized blocks from ``start`` (default: the next one), in order, polling
        ``GET /v1/blocks/{height}`` every ``poll_s`` seconds while the chain has not reached
        it; ends after ``stop`` if given (else never). ``include_empty=False`` skips blocks
        without transactions or events."""
        height = self.status().height + 1 if start is None else start
        while stop is None or height <= stop:
            try:
                b = self.block(height)
            except ApiError as e:
                if e.code != "block_not_found":
                    raise
                time.sleep(poll_s)
                continue
            height += 1
            if include_empty or b.txs or b.events:
                yield b

    def events(
        self,
        start: int | None = None,
        types: Sequence[str] | None = None,
        poll_s: float = 0.5,
        stop: int | None = None,
    ) -> Iterator[tuple[Block, Event]]:
        """Yields ``(block, event)`` for every event from ``start`` on (only ``types`` if
        given, e.g. ``["round_closed", "task_closed"]``)."""
        wanted = set(types) if types else None
        for b in self.follow(start, poll_s, stop, include_empty=False):
            for e in b.events:
                if wanted is None or e.type in wanted:
                    yield b, e

    # --- State ---

    def account(self, address: bytes | str) -> AccountState:
        """An account's balance, nonce, stake and unbonding."""
        return AccountState.from_json(self.get_json(f"/v1/accounts/{_hex(address)}"))

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset (owner, commitment, samples, schema, policy, revoked, epsilon_spent,
        history)."""
        return list(self.get_json("/v1/datasets"))

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        """One dataset (``ApiError`` ``dataset_not_found``)."""
        return dict(self.get_json(f"/v1/datasets/{dataset_id}"))

    def tasks(self) -> list[dict[str, Any]]:
        """Every task (creator, purpose, datasets, rounds, epsilon, delta, reward, escrow,
        status, round_log, ...)."""
        return list(self.get_json("/v1/tasks"))

    def task(self, task_id: int) -> dict[str, Any]:
        """One task (``ApiError`` ``task_not_found``)."""
        return dict(self.get_json(f"/v1/tasks/{task_id}"))

    def models(self) -> list[dict[str, Any]]:
        """Every model (owner, model_hash, task, parent, metrics, history)."""
        return list(self.get_json("/v1/models"))

    def model(self, model_id: int) -> dict[str, Any]:
        """One model (``ApiError`` ``model_not_found``)."""
        return dict(self.get_json(f"/v1/models/{model_id}"))

    def offers(
        self,
        model: int | None = None,
        provider: bytes | str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Inference offers, optionally filtered by model, provider or status."""
        q = {"model": model, "provider": _hex(provider) if provider else None, "status": status}
        return list(self.get_json("/v1/offers", q))

    def offer(self, offer_id: int) -> dict[str, Any]:
        """One offer."""
        return dict(self.get_json(f"/v1/offers/{offer_id}"))

    def channels(
        self, offer: int | None = None, payer: bytes | str | None = None
    ) -> list[dict[str, Any]]:
        """Payment channels of an offer or of a payer (one filter is required)."""
        q = {"offer": offer, "payer": _hex(payer) if payer else None}
        return list(self.get_json("/v1/channels", q))

    def channel(self, channel_id: int) -> dict[str, Any]:
        """One payment channel."""
        return dict(self.get_json(f"/v1/channels/{channel_id}"))

    def proposals(self, status: str | None = None) -> list[dict[str, Any]]:
        """Governance proposals, newest first (optionally of one status)."""
        return list(self.get_json("/v1/proposals", {"status": status}))

    def proposal(self, proposal_id: int) -> dict[str, Any]:
        """One proposal with its votes."""
        return dict(self.get_json(f"/v1/proposals/{proposal_id}"))

    def governance(self) -> dict[str, Any]:
        """Treasury, emissions, rules, parameters and block decisions."""
        return dict(self.get_json("/v1/governance"))

    def proof(self, kind: str, entry_id: Any, verify: bool = True) -> ProofAnswer:
        """The inclusion proof of a state entry: ``kind`` is ``account``, ``dataset``,
        ``task``, ``model``, ``epoch``, ``offer``, ``channel``, ``proposal``, ``blocked``
        (id ``dataset:3`` ...) or ``delegations``. With ``verify`` (the default) the proof is
        checked against the answer's root before it is returned (:meth:`ProofAnswer.verify`;
        the root's certification is not checked)."""
        ident = _hex(entry_id) if isinstance(entry_id, bytes) else str(entry_id)
        answer = ProofAnswer.from_json(
            self.get_json(f"/v1/proofs/{kind}/{urllib.parse.quote(ident, safe=':')}")
        )
        if verify:
            answer.verify()
        return answer

    def verified_account(self, address: bytes | str) -> dict[str, Any]:
        """An account's JSON read with its proof, checked (:meth:`proof`); raises
        :class:`~deai.proof.ProofError` when the answer does not prove it."""
        answer = self.proof("account", address)
        if answer.entry is None:
            raise ProofError("the node sent a proof without the account")
        return answer.entry

    # --- Blobs ---

    def identity(self) -> dict[str, Any]:
        """``GET /v1/identity``: the node's public key (what a signed request to it names)
        and chain id."""
        return dict(self.get_json("/v1/identity"))

    def signed_request(
        self,
        key: Key,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """A request signed with ``key`` for this node (docs/api.md, "Signed peer messages"):
        ``x-deai-key``, ``x-deai-nonce`` (microseconds, strictly increasing), ``x-deai-to``
        (the node's key from :meth:`identity`) and ``x-deai-sig`` over
        ``"deai/peer-request/v2" || chain_id || recipient || method || path || nonce ||
        BLAKE3(body)`` (strings prefixed by their u32 big-endian length)."""
        if self._identity is None:
            self._identity = self.identity()
        chain_id, to = str(self._identity["chain_id"]), bytes.fromhex(self._identity["key"])
        nonce = _next_nonce()
        message = b"".join(
            [
                _PEER_REQUEST_DOMAIN,
                _u32_str(chain_id),
                to,
                _u32_str(method),
                _u32_str(path),
                nonce.to_bytes(8, "big"),
                bytes(Digest.hash(body)),
            ]
        )
        signed = {
            "x-deai-key": key.address.hex(),
            "x-deai-nonce": str(nonce),
            "x-deai-sig": key.sign(message).hex(),
            "x-deai-to": to.hex(),
            **dict(headers or {}),
        }
        return self.request(method, path, body, signed)

    def put_blob(self, data: bytes, key: Key) -> Digest:
        """Stores ``data`` on the node by its BLAKE3 hash, as a request signed by ``key`` (the
        node's own key, one its config lists, or a funded ledger account); the hash."""
        h = Digest.hash(data)
        self.signed_request(
            key, "PUT", f"/v1/blobs/{h}", data, {"content-type": "application/octet-stream"}
        )
        return h

    def get_blob(self, digest: bytes | str) -> bytes:
        """The blob of ``digest``, checked against it."""
        h = Digest.from_hex(_hex(digest))
        _, _, data = self.request("GET", f"/v1/blobs/{h}")
        if Digest.hash(data) != h:
            raise ValueError(f"blob {h}: the node sent bytes of another hash")
        return data

    # --- Transactions ---

    def submit(self, signed: SignedTx) -> Digest:
        """``POST /v1/txs``: admits the transaction to the mempool; its id."""
        answer = self.post_json("/v1/txs", {"tx": signed.encode().hex()})
        got = Digest.from_hex(answer["id"])
        if got != signed.id():
            raise ValueError(f"the node names the transaction {got}, its id is {signed.id()}")
        return got

    def submit_batch(self, signed: Sequence[SignedTx]) -> list[dict[str, Any]]:
        """``POST /v1/txs/batch``: one verdict per transaction, in order
        (``{"status": "accepted", "id"}`` or ``{"status": "rejected", "code", "message"}``)."""
        answer = self.post_json("/v1/txs/batch", {"txs": [s.encode().hex() for s in signed]})
        return list(answer["results"])

    def tx_status(self, tx_id: bytes | str) -> TxStatus:
        """Where a transaction stands (``ApiError`` ``tx_not_found`` when the node does not
        know it)."""
        return TxStatus.from_json(self.get_json(f"/v1/txs/{_hex(tx_id)}"))

    def wait(self, tx_id: bytes | str, timeout_s: float = 60.0, poll_s: float = 0.1) -> TxStatus:
        """Polls until the transaction is finalized and returns its status; raises
        :class:`TxFailed` when it was dropped or refused by the ledger, ``TimeoutError`` after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        tid = Digest.from_hex(_hex(tx_id))
        while True:
            try:
                s = self.tx_status(tid)
            except ApiError as e:
                if e.code != "tx_not_found":
                    raise
                s = TxStatus(status="unknown")
            if s.status == "rejected":
                raise TxFailed(tid, s, s.code or "rejected", s.reason or "")
            if s.status == "finalized":
                if not s.applied:
                    err = s.error or {}
                    raise TxFailed(tid, s, str(err.get("code", "failed")), json.dumps(err))
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f"transaction {tid} not finalized after {timeout_s} s")
            time.sleep(poll_s)

    def build(
        self,
        key: Key,
        body: TxBody,
        fee: int | None = None,
        nonce: int | None = None,
    ) -> SignedTx:
        """Signs ``body`` from ``key``'s account: the chain's id, the node's least fee unless
        ``fee`` is given, the account's next nonce unless ``nonce`` is given."""
        status = self.status()
        if nonce is None:
            nonce = self.account(key.address).nonce
        tx = Tx(
            chain_id=status.chain_id,
            sender=key.address,
            nonce=nonce,
            fee=status.fee_min if fee is None else fee,
            body=body,
        )
        return tx.sign(key)

    def send(
        self,
        key: Key,
        body: TxBody,
        fee: int | None = None,
        nonce: int | None = None,
        timeout_s: float = 60.0,
    ) -> TxStatus:
        """:meth:`build`, :meth:`submit` and :meth:`wait`: the finalized status (its
        ``events`` say what happened). Raises :class:`ApiError` when the node refuses it at
        once, :class:`TxFailed` when the ledger refuses it in a block."""
        signed = self.build(key, body, fee, nonce)
        return self.wait(self.submit(signed), timeout_s)

    # --- pandas ---

    def tasks_frame(self) -> Any:
        """Every task as a pandas DataFrame, one row per task (needs ``deai[pandas]``)."""
        from .frames import tasks_frame

        return tasks_frame(self.tasks())

    def rounds_frame(self, task_id: int, coordinator: Client | None = None) -> Any:
        """A task's rounds as a pandas DataFrame, one row per round (needs ``deai[pandas]``).
        The ledger has no per-round accuracy; with ``coordinator`` (a client of the
        coordinator role node that ran the task) its reported ``accuracy`` and ``loss`` are
        joined in."""
        from .frames import rounds_frame

        reports: list[dict[str, Any]] | None = None
        if coordinator is not None:
            status = coordinator.get_json("/v1/status")
            tasks = (status.get("coordinator") or {}).get("tasks", [])
            reports = next((t["rounds"] for t in tasks if t["task"] == task_id), [])
        return rounds_frame(self.task(task_id), reports)

    def datasets_frame(self) -> Any:
        """Every dataset as a pandas DataFrame (needs ``deai[pandas]``)."""
        from .frames import datasets_frame

        return datasets_frame(self.datasets())

    def blocks_frame(self, start: int, stop: int) -> Any:
        """Blocks ``start..=stop`` as a pandas DataFrame (needs ``deai[pandas]``)."""
        from .frames import blocks_frame

        return blocks_frame([self.block(h) for h in range(start, stop + 1)])


_PEER_REQUEST_DOMAIN = b"deai/peer-request/v2"
_nonce_lock = threading.Lock()
_last_nonce = 0


def _next_nonce() -> int:
    """The signing clock: microseconds since the epoch, strictly increasing in this process."""
    global _last_nonce
    with _nonce_lock:
        _last_nonce = max(time.time_ns() // 1000, _last_nonce + 1)
        return _last_nonce


def _u32_str(s: str) -> bytes:
    data = s.encode()
    return len(data).to_bytes(4, "big") + data


def _hex(v: bytes | str) -> str:
    return bytes(v).hex() if isinstance(v, (bytes, bytearray)) else str(v)


def _api_error(status: int, data: bytes, headers: Mapping[str, str]) -> ApiError:
    try:
        err = json.loads(data)["error"]
        return ApiError(status, str(err["code"]), str(err["message"]), headers)
    except (ValueError, KeyError, TypeError):
        text = data.decode("utf-8", "replace")[:200]
        return ApiError(status, f"http_{status}", text, headers)
