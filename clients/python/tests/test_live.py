"""End to end against a real node: `deai init` and `deai node` (the Rust binary) on loopback,
then everything through the Python client — status, key files both ways, a transfer from the
dev account, a dataset, a task trained for two rounds and closed, an offer, a channel and a
claim of a voucher signed in Python, paid inference from a provider role node (answers checked
against the engine's, receipts against the provider's signature, a dispute re-executed by the
ledger), proofs, following blocks and events, pandas frames.

Every transaction here is built and signed by Python and accepted by the Rust ledger, so this
also proves the encodings live. The binary is `target/debug/deai` (built by the workspace's
`cargo test`), or `$DEAI_BIN`. Without it the module is skipped, unless `DEAI_LIVE_REQUIRED=1`
(set by scripts/test-python.sh), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, load
from deai import (
    TOKEN,
    Address,
    ApiError,
    ChannelClaim,
    ChannelClose,
    ChannelOpen,
    Client,
    ConsentPolicy,
    DatasetRegister,
    Digest,
    EpsilonStep,
    Key,
    Metric,
    OfferCreate,
    ProofError,
    ReceiptDispute,
    RoundOpen,
    RoundResult,
    Score,
    SecAggParams,
    SignedTx,
    TaskClose,
    TaskCommitValidation,
    TaskCreate,
    Transfer,
    Tx,
    TxFailed,
    Voucher,
    dataset_commitment,
    validation_commitment,
)
from deai.client import ROUTES
from deai.inference import Output, PaidSession

pytestmark = pytest.mark.live

EXAMPLES = REPO / "clients" / "python" / "examples"


def _binary() -> Path | None:
    env = os.environ.get("DEAI_BIN")
    path = Path(env) if env else REPO / "target" / "debug" / "deai"
    return path if path.is_file() and os.access(path, os.X_OK) else None


BIN = _binary()
if BIN is None:
    if os.environ.get("DEAI_LIVE_REQUIRED") == "1":
        raise RuntimeError("no deai binary at target/debug/deai (or $DEAI_BIN): build it first")
    pytest.skip(
        "no deai binary (cargo build -p deai-cli, or set DEAI_BIN)", allow_module_level=True
    )


def deai(*args: str) -> Any:
    """Runs the CLI with ``--json`` output; its parsed answer."""
    out = subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


class Node:
    """A `deai node` child process on loopback: by default a validator of a fresh dev chain;
    with ``init_args`` (``--role provider --upstream URL``) a role node."""

    def __init__(self, root: Path, name: str = "node", init_args: tuple[str, ...] = ()) -> None:
        self.dir = root / name
        p2p = () if init_args else ("--p2p", "127.0.0.1:0")
        self.init = deai(
            "init", "--json", "--dir", str(self.dir), "--http", "127.0.0.1:0", *p2p, *init_args
        )
        self.log = open(root / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN), "node", "--json", "--dir", str(self.dir), "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        try:
            self.url = "http://" + json.loads(first)["http"]
        except (ValueError, KeyError) as e:
            self.stop()
            raise RuntimeError(f"the node's first line is not its address: {first!r}") from e

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("deai-live"))
    yield n
    n.stop()


@pytest.fixture(scope="module")
def client(node: Node) -> Client:
    return Client(node.url)


@pytest.fixture(scope="module")
def dev(node: Node) -> Key:
    return Key.load(node.dir / "dev.key")


#: What the tests below build up, in file order.
WORLD: dict[str, Any] = {}


def test_status_and_dev_key(node: Node, client: Client, dev: Key) -> None:
    s = client.status()
    assert s.chain_id == node.init["chain_id"] == "deai-dev"
    assert s.fee_min >= 1 and s.validator and s.validators == 1
    assert str(dev.address) == node.init["dev_address"]
    # The file the Rust CLI wrote is byte for byte what Python writes for that seed.
    assert (node.dir / "dev.key").read_text() == dev.key_file_text()
    assert client.account(dev.address).balance == int(node.init["dev_balance"])
    paths = client.openapi()["paths"]
    missing = [(m, path) for m, path in ROUTES if m not in paths.get(path, {})]
    assert not missing, f"routes the client uses that the node's OpenAPI lacks: {missing}"


def test_the_cli_reads_a_python_key_file(tmp_path: Path) -> None:
    key = Key.generate()
    path = tmp_path / "py.key"
    key.save(path)
    shown = deai("key", "show", "--json", str(path))
    assert str(key.address) in json.dumps(shown)


def test_transfer_from_the_dev_account(client: Client, dev: Key) -> None:
    owner, provider = Key.generate(), Key.generate()
    nonce = client.account(dev.address).nonce
    status = client.send(dev, Transfer(to=owner.address, amount=50 * TOKEN))
    assert status.status == "finalized" and status.applied
    assert [e.type for e in status.events].count("transferred") == 1
    client.send(dev, Transfer(to=provider.address, amount=50 * TOKEN))
    assert client.account(owner.address).balance == 50 * TOKEN
    assert client.account(dev.address).nonce == nonce + 2
    WORLD.update(owner=owner, provider=provider, transfer_height=status.height)


def test_refusals_carry_the_api_code(client: Client, dev: Key) -> None:
    with pytest.raises(ApiError) as e:
        client.dataset(999_999)
    assert e.value.status == 404 and e.value.code == "dataset_not_found"
    replayed = client.build(dev, Transfer(to=dev.address, amount=1), nonce=0)
    with pytest.raises(ApiError) as e:
        client.submit(replayed)
    assert e.value.status == 422 and e.value.code.startswith("nonce")
    poor = Key.generate()
    broke = client.build(poor, Transfer(to=dev.address, amount=1))
    with pytest.raises((ApiError, TxFailed)) as e:
        client.wait(client.submit(broke))
    assert "funds" in str(e.value) or "afford" in str(e.value)


def test_register_a_dataset(client: Client) -> None:
    owner: Key = WORLD["owner"]
    policy = ConsentPolicy(
        purposes=["research"],
        creators=None,
        reward_min=0,
        epsilon_max=8_000_000,
        expiry_height=10**9,
        royalty_bps_min=100,
    )
    commitment = dataset_commitment(Digest.hash(b"salt"), Digest.hash(b"the data"))
    status = client.send(
        owner,
        DatasetRegister(commitment=commitment, samples=600, schema="digits-8x8", policy=policy),
    )
    (event,) = [e for e in status.events if e.type == "dataset_registered"]
    d = client.dataset(event["id"])
    assert Address.from_hex(d["owner"]) == owner.address
    assert d["commitment"] == str(commitment) and d["samples"] == 600
    assert d["policy"]["purposes"] == ["research"] and d["policy"]["royalty_bps_min"] == 100
    assert any(x["id"] == d["id"] for x in client.datasets())
    WORLD["dataset"] = d["id"]


def test_train_a_task_for_two_rounds_and_close_it(client: Client, dev: Key) -> None:
    ds = WORLD["dataset"]
    status = client.send(
        dev,
        TaskCreate(
            purpose="research",
            model_spec=Digest.hash(b"mlp spec"),
            datasets=[ds],
            rounds=2,
            epsilon=2_000_000,
            epsilon_schedule=[EpsilonStep(1, 1_000_000), EpsilonStep(2, 2_000_000)],
            delta=10_000_000,
            reward=100 * TOKEN,
        ),
    )
    task = next(e["id"] for e in status.events if e.type == "task_created")
    salt, data = Digest.hash(b"validation salt"), Digest.hash(b"validation set")
    client.send(dev, TaskCommitValidation(task=task, commitment=validation_commitment(salt, data)))
    model = Digest.hash(b"initial model")
    for rnd, score in ((1, 800_000), (2, 900_000)):
        client.send(
            dev,
            RoundOpen(
                task=task,
                round=rnd,
                global_model=model,
                count=1,
                secagg=SecAggParams(n=1, k=1, t=1),
                delta=1_000_000,
            ),
        )
        new_model = Digest.hash(b"model after round", bytes([rnd]))
        client.send(
            dev,
            RoundResult(
                task=task,
                round=rnd,
                masked_updates=[Digest.hash(b"update", bytes([rnd]))],
                survivors=[ds],
                unmasking=Digest.hash(b"unmasking", bytes([rnd])),
                aggregate=Digest.hash(b"aggregate", bytes([rnd])),
                new_model=new_model,
                scores=[Score(dataset=ds, value=score)],
            ),
        )
        model = new_model
    client.send(
        dev,
        TaskClose(
            task=task,
            validation_salt=salt,
            validation_data=data,
            parent=None,
            metrics=[Metric("accuracy", 912_000), Metric("loss", -3)],
        ),
    )
    t = client.task(task)
    assert len(t["round_log"]) == 2 and t["epsilon_spent"] == 2_000_000
    assert t["final_model"] is not None, t["status"]
    m = client.model(t["final_model"])
    assert m["model_hash"] == str(model) and m["task"] == task
    WORLD.update(task=task, model=t["final_model"])


def example(name: str, *args: str) -> str:
    """Runs ``clients/python/examples/<name>`` with this Python; its standard output."""
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


def test_pandas_frames(node: Node, client: Client, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    rounds = client.rounds_frame(WORLD["task"])
    assert list(rounds.index) == [1, 2]
    assert list(rounds["state"]) == ["completed", "completed"]
    assert list(rounds["epsilon_cumulative"]) == [1.0, 2.0]
    assert list(rounds["survivors"]) == [1, 1] and list(rounds["score_mean"]) == [0.8, 0.9]
    tasks = client.tasks_frame()
    assert tasks.loc[WORLD["task"], "rounds_completed"] == 2
    assert tasks.loc[WORLD["task"], "epsilon_spent"] == 2.0
    datasets = client.datasets_frame()
    assert datasets.loc[WORLD["dataset"], "epsilon_spent"] == 2.0
    height = client.status().height
    blocks = client.blocks_frame(max(1, height - 3), height)
    assert len(blocks) == min(4, height)
    report = example(
        "task_report.py", node.url, str(WORLD["task"]), "--out", str(tmp_path / "t.png")
    )
    assert f"task {WORLD['task']}: 'research', " in report and "2 of 2 rounds" in report


def test_a_voucher_signed_in_python_is_claimed_on_chain(client: Client, dev: Key) -> None:
    provider: Key = WORLD["provider"]
    status = client.send(
        provider,
        OfferCreate(
            model=WORLD["model"],
            quant_hash=Digest.hash(b"quantized blob"),
            ops=1_000,
            price_per_query=10,
            bond=int(client.governance()["params"]["offer_bond_min"]),
            endpoint="http://127.0.0.1:9/",
            royalty_bps=500,
        ),
    )
    offer = next(e["id"] for e in status.events if e.type == "offer_created")
    height = client.status().height
    status = client.send(dev, ChannelOpen(offer=offer, deposit=1_000, expiry_height=height + 500))
    channel = next(e["id"] for e in status.events if e.type == "channel_opened")
    voucher = Voucher(chain_id=client.chain_id(), channel_id=channel, cumulative_amount=300)
    client.send(provider, ChannelClaim(channel=channel, voucher=voucher.sign(dev)))
    c = client.channel(channel)
    assert int(c["claimed"]) == 300 and c["payer"] == str(dev.address)
    # A voucher the payer did not sign is refused by the ledger.
    forged = voucher.sign(provider)
    forged.voucher.cumulative_amount = 400
    with pytest.raises((ApiError, TxFailed)):
        client.send(provider, ChannelClaim(channel=channel, voucher=forged))
    client.send(provider, ChannelClose(channel=channel))
    assert client.channel(channel)["status"] != "open"
    assert any(o["id"] == offer for o in client.offers(model=WORLD["model"]))
    WORLD["channel"] = channel


def test_buy_inference_through_a_payment_channel(
    node: Node, client: Client, dev: Key, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A provider role node serves an offer of the task's model with the seeded quantized
    blob of tests/vectors/model.json; Python opens a channel, pays with vouchers, checks the
    answers against the engine's and the provider's signature over their receipts, and then
    disputes a correct receipt, which the ledger re-executes and rejects."""
    model = load("model.json")
    blob = bytes.fromhex(model["blob"])
    assert str(client.put_blob(blob, dev)) == model["hash"]
    provider = Node(
        tmp_path_factory.mktemp("deai-provider"),
        "provider",
        ("--role", "provider", "--upstream", node.url),
    )
    try:
        provider_key = Key.load(provider.dir / "node.key")
        client.send(dev, Transfer(to=provider_key.address, amount=20 * TOKEN))
        params = client.governance()["params"]
        status = client.send(
            provider_key,
            OfferCreate(
                model=WORLD["model"],
                quant_hash=Digest.from_hex(model["hash"]),
                ops=model["ops"],
                price_per_query=3,
                bond=int(params["offer_bond_min"]),
                endpoint=provider.url,
                royalty_bps=100,
            ),
        )
        offer = next(e["id"] for e in status.events if e.type == "offer_created")
        session = PaidSession.open(client, dev, offer, deposit=1_000, blocks=2_000)
        deadline = time.monotonic() + 20
        while True:  # the provider learns of the offer on its next refresh
            try:
                info = session.info()
                break
            except ApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert info.model_hash == Digest.from_hex(model["hash"])
        assert (info.arch, info.input_len) == (model["arch"], model["input_len"])
        queries = model["queries"]
        inputs = [bytes.fromhex(q["input"]) for q in queries]
        answers = session.query(inputs[:1]) + session.query(inputs[1:])
        assert [a.output_bytes.hex() for a in answers] == [q["output"] for q in queries]
        assert session.unsigned == 0 and session.spent == 3 * len(inputs)
        receipts = [session.signed_receipt(a) for a in answers]
        assert all(r is not None and r.verify(provider_key.address) for r in receipts)
        # A voucher not covering what was answered is refused with the API's code.
        with pytest.raises(ApiError) as refused:
            session.provider_client.request(
                "POST",
                f"/v1/infer/{offer}",
                inputs[0],
                {"deai-voucher": session.voucher(3).hex()},
            )
        assert refused.value.code == "voucher_too_low"
        # Disputing a right answer: the validators re-execute it and reject the dispute.
        receipt = receipts[0]
        assert receipt is not None
        fee = int(params["fee_min"]) + int(params["dispute_fee_per_byte"]) * (
            len(blob) + len(inputs[0])
        )
        status = client.send(
            dev, ReceiptDispute(receipt=receipt, input=inputs[0], model=blob), fee=fee
        )
        assert "dispute_rejected" in [e.type for e in status.events]
        # The agent example buys the same answers from the cheapest offer (this one).
        inputs_file = provider.dir.parent / "inputs.json"
        inputs_file.write_text(json.dumps([q["input"] for q in queries]))
        bought = json.loads(
            example(
                "buy_predictions.py",
                node.url,
                str(node.dir / "dev.key"),
                str(inputs_file),
                "--json",
            )
        )
        assert bought["offer"] == offer and bought["queries"] == len(queries)
        assert bought["classes"] == [
            Output.from_bytes(bytes.fromhex(q["output"])).cls for q in queries
        ]
    finally:
        provider.stop()


def test_proofs_of_what_was_built(client: Client, dev: Key) -> None:
    owner: Key = WORLD["owner"]
    answer = client.proof("account", owner.address)  # verified on the way
    assert answer.entry is not None and answer.entry["address"] == str(owner.address)
    assert answer.root == client.block(answer.height).state_root
    entry = client.verified_account(dev.address)
    assert int(entry["balance"]) == client.account(dev.address).balance
    for kind, ident in (
        ("dataset", WORLD["dataset"]),
        ("task", WORLD["task"]),
        ("model", WORLD["model"]),
        ("channel", WORLD["channel"]),
        ("epoch", 0),
    ):
        p = client.proof(kind, ident)
        assert p.proof.key.kind == kind
    # A lie about the account is caught.
    lying = client.proof("account", owner.address, verify=False)
    assert lying.entry is not None
    lying.entry["balance"] = str(int(lying.entry["balance"]) + 1)
    with pytest.raises(ProofError):
        lying.verify()
    with pytest.raises(ProofError):
        client.proof("account", owner.address).verify(root=Digest.hash(b"another root"))


def test_follow_blocks_and_events(client: Client, dev: Key) -> None:
    start = WORLD["transfer_height"]
    tip = client.status().height
    seen: list[SignedTx] = []
    for block in client.follow(start=start, stop=tip):
        assert len(block.txs) == len(block.receipts) == len(block.tx_ids)
        for tx, tx_id in zip(block.txs, block.tx_ids, strict=True):
            assert tx.id() == tx_id and tx.verify_signature()
            assert tx.encode().hex() in block.raw["txs"]
        seen.extend(block.txs)
    kinds = {type(t.tx.body).__name__ for t in seen}
    assert {"Transfer", "DatasetRegister", "TaskCreate", "RoundResult", "ChannelClaim"} <= kinds
    events = [e for _, e in client.events(start=start, stop=tip, types=["dataset_registered"])]
    assert [e["id"] for e in events] == [WORLD["dataset"]]
    printed = example(
        "follow_events.py",
        client.url,
        "--from",
        str(start),
        "--to",
        str(tip),
        "--type",
        "dataset_registered",
    )
    assert printed.count("dataset_registered") == 1
    # Following past the tip waits for the next block.
    nxt = next(client.follow(poll_s=0.05))
    assert nxt.height > tip


def test_a_signed_tx_round_trips_through_the_node(client: Client, dev: Key) -> None:
    signed = Tx(
        chain_id=client.chain_id(),
        sender=dev.address,
        nonce=client.account(dev.address).nonce,
        fee=client.status().fee_min,
        body=Transfer(to=WORLD["owner"].address, amount=1),
    ).sign(dev)
    tx_id = client.submit(signed)
    final = client.wait(tx_id)
    block = client.block(final.height or 0)
    assert block.txs[final.index or 0] == signed
