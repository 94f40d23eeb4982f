"""Prints the chain's events as blocks finalize (Ctrl-C to stop).

python follow_events.py http://127.0.0.1:7650
python follow_events.py http://127.0.0.1:7650 --from 1 --type round_closed --type task_closed
"""

from __future__ import annotations

import argparse

from deai import Client

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("node", help="a node's API")
parser.add_argument("--from", dest="start", type=int, default=None, help="first height")
parser.add_argument("--to", dest="stop", type=int, default=None, help="last height")
parser.add_argument("--type", action="append", help="only events of this type (repeat)")
args = parser.parse_args()

client = Client(args.node)
try:
    for block, event in client.events(start=args.start, types=args.type, stop=args.stop):
        fields = {k: v for k, v in event.data.items() if k != "type"}
        print(f"{block.height:>8}  {event.type:<24} {fields}")
except KeyboardInterrupt:
    pass
