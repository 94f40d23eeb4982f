"""pandas views of the ledger: tasks, a task's rounds, datasets, blocks.

Needs pandas (``pip install 'deai[pandas]'``); importing this module without it raises an
``ImportError`` that says so. Fixed-point ledger values get float companions: ``epsilon``
(× 10⁶ on the ledger) becomes ``epsilon`` as a float beside ``epsilon_fixed`` as the integer;
amounts stay exact Python integers (``object`` columns) since they exceed 64 bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

try:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
except ImportError as e:  # pragma: no cover - exercised only without pandas
    raise ImportError(
        "deai's DataFrame helpers need pandas: pip install 'deai[pandas]' (or pip install pandas)"
    ) from e

if TYPE_CHECKING:
    from .client import Block

__all__ = ["blocks_frame", "datasets_frame", "rounds_frame", "tasks_frame"]

#: Scale of ε, scores and metrics on the ledger.
EPSILON_SCALE = 1_000_000
#: Scale of δ on the ledger.
DELTA_SCALE = 1_000_000_000_000
SCORE_SCALE = 1_000_000


def tasks_frame(tasks: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per task: id, creator, purpose, status, rounds (planned), rounds_opened,
    rounds_completed, datasets (count), epsilon budget and spent (floats and ``_fixed``
    integers), delta budget and spent, reward and escrow (base units), coordinator,
    final_model, created_height."""
    rows = []
    for t in tasks:
        log = t.get("round_log", [])
        rows.append(
            {
                "id": t["id"],
                "creator": t["creator"],
                "purpose": t["purpose"],
                "status": t["status"],
                "rounds": t["rounds"],
                "rounds_opened": len(log),
                "rounds_completed": sum(1 for r in log if r.get("outcome")),
                "datasets": len(t.get("datasets", [])),
                "epsilon": t["epsilon"] / EPSILON_SCALE,
                "epsilon_spent": t.get("epsilon_spent", 0) / EPSILON_SCALE,
                "epsilon_fixed": t["epsilon"],
                "epsilon_spent_fixed": t.get("epsilon_spent", 0),
                "delta": t["delta"] / DELTA_SCALE,
                "delta_spent": t.get("delta_spent", 0) / DELTA_SCALE,
                "reward": int(t["reward"]),
                "escrow": int(t["escrow"]),
                "coordinator": t.get("coordinator"),
                "final_model": t.get("final_model"),
                "created_height": t["created_height"],
            }
        )
    columns = [
        "id", "creator", "purpose", "status", "rounds", "rounds_opened", "rounds_completed",
        "datasets", "epsilon", "epsilon_spent", "epsilon_fixed", "epsilon_spent_fixed", "delta",
        "delta_spent", "reward", "escrow", "coordinator", "final_model", "created_height",
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=columns)
    for c in ("reward", "escrow"):
        df[c] = df[c].astype(object)
    return df.set_index("id")


def _round_state(r: Mapping[str, Any]) -> str:
    if r.get("expired_height") is not None:
        return "expired"
    outcome = r.get("outcome")
    if outcome is None:
        return "open"
    return "completed" if outcome.get("survivors") else "aborted"


def rounds_frame(
    task: Mapping[str, Any], coordinator_rounds: Sequence[Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """One row per round of ``task`` (the node's JSON of a task), by round number: state
    (open, completed, aborted, expired), opened/closed/expired heights, selected, eligible,
    survivors and dropouts (counts), epsilon the round added and the task's cumulative epsilon
    after it (floats; ``_fixed`` integers too), delta, mean and total score (0..1).

    The ledger records no accuracy per round (only the closing metrics); pass the
    coordinator's round reports (``coordinator_rounds``: the ``rounds`` of the task in a
    coordinator role node's ``GET /v1/status``) to add its ``accuracy`` and ``loss``."""
    rows = []
    cumulative = 0
    for r in task.get("round_log", []):
        outcome = r.get("outcome") or {}
        survivors = outcome.get("survivors", [])
        scores = [s["value"] / SCORE_SCALE for s in outcome.get("scores", [])]
        cumulative += r["epsilon"]
        rows.append(
            {
                "round": r["number"],
                "state": _round_state(r),
                "opened_height": r["opened_height"],
                "closed_height": outcome.get("closed_height"),
                "expired_height": r.get("expired_height"),
                "deadline_height": r.get("deadline_height"),
                "selected": len(r.get("selected", [])),
                "eligible": r.get("eligible"),
                "survivors": len(survivors),
                "dropouts": len(r.get("selected", [])) - len(survivors) if outcome else None,
                "epsilon": r["epsilon"] / EPSILON_SCALE,
                "epsilon_cumulative": cumulative / EPSILON_SCALE,
                "epsilon_fixed": r["epsilon"],
                "epsilon_cumulative_fixed": cumulative,
                "delta": r["delta"] / DELTA_SCALE,
                "score_mean": sum(scores) / len(scores) if scores else None,
                "score_total": sum(scores) if scores else None,
                "global_model": r.get("global_model"),
                "new_model": outcome.get("new_model"),
            }
        )
    columns = [
        "round", "state", "opened_height", "closed_height", "expired_height", "deadline_height",
        "selected", "eligible", "survivors", "dropouts", "epsilon", "epsilon_cumulative",
        "epsilon_fixed", "epsilon_cumulative_fixed", "delta", "score_mean", "score_total",
        "global_model", "new_model",
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=columns).set_index("round")
    if coordinator_rounds is not None:
        extra = pd.DataFrame(
            [
                {"round": c["round"], "accuracy": c.get("accuracy"), "loss": c.get("loss")}
                for c in coordinator_rounds
            ],
            columns=["round", "accuracy", "loss"],
        ).set_index("round")
        df = df.join(extra, how="left")
    return df


def datasets_frame(datasets: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per dataset: id, owner, samples, schema, purposes, revoked, epsilon_max and
    epsilon_spent (floats), expiry_height, registered_height, tasks (count of history entries
    naming a task)."""
    rows = []
    for d in datasets:
        p = d["policy"]
        rows.append(
            {
                "id": d["id"],
                "owner": d["owner"],
                "samples": d["samples"],
                "schema": d["schema"],
                "purposes": list(p["purposes"]),
                "revoked": d["revoked"],
                "epsilon_max": p["epsilon_max"] / EPSILON_SCALE,
                "epsilon_spent": d.get("epsilon_spent", 0) / EPSILON_SCALE,
                "expiry_height": p["expiry_height"],
                "registered_height": d["registered_height"],
            }
        )
    columns = [
        "id", "owner", "samples", "schema", "purposes", "revoked", "epsilon_max",
        "epsilon_spent", "expiry_height", "registered_height",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).set_index("id")


def blocks_frame(blocks: Iterable[Block]) -> pd.DataFrame:
    """One row per block: height, proposer, txs, events, time (UTC), finality latency (ms)."""
    rows = [
        {
            "height": b.height,
            "proposer": str(b.proposer),
            "txs": len(b.txs),
            "events": len(b.events),
            "time": pd.to_datetime(b.timestamp_ms, unit="ms", utc=True),
            "finality_ms": b.finalized_at_ms - b.timestamp_ms,
            "state_root": str(b.state_root),
        }
        for b in blocks
    ]
    columns = ["height", "proposer", "txs", "events", "time", "finality_ms", "state_root"]
    return pd.DataFrame(rows, columns=columns).set_index("height")
