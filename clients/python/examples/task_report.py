"""A task's rounds as a table and a chart: accuracy (when a coordinator reports it) and the
privacy spent (cumulative ε) per round, from the ledger. Notebook-style: run it, or paste the
cells into Jupyter.

    python task_report.py http://127.0.0.1:7650 1
    python task_report.py http://127.0.0.1:7650 1 --coordinator http://127.0.0.1:7651 --out t.png

Needs ``deai[pandas]``; the chart needs matplotlib (without it, the table alone is printed).
"""

from __future__ import annotations

import argparse

from deai import Client

# %% Arguments
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("node", help="a validator's API, e.g. http://127.0.0.1:7650")
parser.add_argument("task", type=int, help="the task id")
parser.add_argument("--coordinator", help="the coordinator role node's API (adds accuracy)")
parser.add_argument("--out", help="write the chart to this PNG instead of showing it")
args = parser.parse_args()

# %% The task and its rounds, from the ledger
client = Client(args.node)
task = client.task(args.task)
coordinator = Client(args.coordinator) if args.coordinator else None
rounds = client.rounds_frame(args.task, coordinator=coordinator)
done = f"{len(rounds)} of {task['rounds']} rounds"
print(f"task {task['id']}: {task['purpose']!r}, {task['status']}, {done}")
print(f"epsilon spent {task['epsilon_spent'] / 1e6} of {task['epsilon'] / 1e6}")
columns = ["state", "selected", "survivors", "epsilon", "epsilon_cumulative", "score_mean"]
columns += [c for c in ("accuracy", "loss") if c in rounds]
print(rounds[columns].to_string())

# %% Accuracy and ε per round
try:
    import matplotlib

    if args.out:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(pip install matplotlib for the chart)")
else:
    fig, left = plt.subplots(figsize=(7, 4))
    left.plot(rounds.index, rounds["epsilon_cumulative"], "o-", color="tab:red", label="ε spent")
    left.axhline(task["epsilon"] / 1e6, color="tab:red", linestyle=":", label="ε budget")
    left.set_xlabel("round")
    left.set_ylabel("cumulative ε")
    if "accuracy" in rounds and rounds["accuracy"].notna().any():
        right = left.twinx()
        right.plot(rounds.index, rounds["accuracy"], "s-", color="tab:blue", label="accuracy")
        right.set_ylabel("validation accuracy")
    left.set_title(f"task {task['id']}: {task['purpose']}")
    fig.legend(loc="lower right")
    fig.tight_layout()
    if args.out:
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")
    else:
        plt.show()
