"""An agent that buys predictions: finds the cheapest active offer (of a model whose recorded
accuracy is high enough), opens a payment channel for what the inputs cost, sends them in
batches paying with cumulative vouchers, checks every answer's receipt against the provider's
signature, and prints the classes.

    python buy_predictions.py http://127.0.0.1:7650 .deai/dev.key inputs.json
    python buy_predictions.py NODE KEY inputs.json --min-accuracy 0.9 --max-price 10 --json

``inputs.json`` is a JSON array of inputs, each an array of byte values or a hex string, of the
model's input length (``GET /v1/infer/{offer}`` on the provider says which).
"""

from __future__ import annotations

import argparse
import json
import sys

from deai import Client, Key
from deai.inference import PaidSession

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("node", help="a validator's API")
parser.add_argument("key", help="the payer's key file (deai key new, or .deai/dev.key)")
parser.add_argument("inputs", help="JSON array of inputs")
parser.add_argument("--min-accuracy", type=float, default=0.0)
parser.add_argument("--max-price", type=int, default=None, help="base units per query")
parser.add_argument("--batch", type=int, default=32, help="queries per request")
parser.add_argument("--json", action="store_true", help="print one JSON object")
args = parser.parse_args()

client = Client(args.node)
payer = Key.load(args.key)
with open(args.inputs) as f:
    inputs = [bytes.fromhex(x) if isinstance(x, str) else bytes(x) for x in json.load(f)]


def accuracy(model_id: int) -> float:
    """The model's recorded accuracy (metrics are fixed point, × 10⁶)."""
    metrics = {m["name"]: m["value"] for m in client.model(model_id)["metrics"]}
    return metrics.get("accuracy", 0) / 1e6


# Cheapest first among the active offers that fit; then the more accurate.
offers = [
    o
    for o in client.offers(status="active")
    if (args.max_price is None or int(o["price_per_query"]) <= args.max_price)
    and accuracy(o["model"]) >= args.min_accuracy
]
offers.sort(key=lambda o: (int(o["price_per_query"]), -accuracy(o["model"])))
if not offers:
    sys.exit("no active offer fits")
offer = offers[0]
cost = int(offer["price_per_query"]) * len(inputs)
if client.account(payer.address).balance < cost:
    sys.exit(f"the payer's balance does not cover {cost}")

session = PaidSession.open(client, payer, offer["id"], deposit=cost)
classes = []
for i in range(0, len(inputs), args.batch):
    for answer in session.query(inputs[i : i + args.batch]):
        receipt = session.signed_receipt(answer)
        assert receipt is not None and receipt.verify(session.provider)
        classes.append(answer.output.cls)

report = {
    "offer": offer["id"],
    "model": offer["model"],
    "provider": offer["provider"],
    "channel": session.channel["id"],
    "queries": len(classes),
    "paid": session.spent,
    "classes": classes,
}
print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
