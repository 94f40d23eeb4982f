"""The pandas helpers on the ledger's JSON shapes, and the message without pandas."""

from __future__ import annotations

import importlib
import sys

import pytest


def task_json() -> dict:
    def rnd(n: int, eps: int, outcome: dict | None, expired: int | None = None) -> dict:
        return {
            "number": n,
            "opened_height": 10 * n,
            "seed": "00" * 32,
            "global_model": "11" * 32,
            "selected": [1, 2, 3],
            "secagg": {"n": 3, "k": 3, "t": 2},
            "epsilon": eps,
            "delta": 1_000_000,
            "eligible": 4,
            "deadline_height": 10 * n + 5,
            "outcome": outcome,
            "expired_height": expired,
        }

    done = {
        "closed_height": 12,
        "masked_updates": ["22" * 32, "33" * 32],
        "survivors": [1, 3],
        "unmasking": "44" * 32,
        "aggregate": "55" * 32,
        "new_model": "66" * 32,
        "scores": [{"dataset": 1, "value": 500_000}, {"dataset": 3, "value": 1_000_000}],
    }
    aborted = dict(done, survivors=[], masked_updates=[], scores=[])
    return {
        "id": 7,
        "creator": "aa" * 32,
        "purpose": "research",
        "model_spec": "bb" * 32,
        "datasets": [1, 2, 3, 4],
        "rounds": 5,
        "epsilon": 5_000_000,
        "epsilon_schedule": [],
        "delta": 10_000_000,
        "reward": str(10**24),
        "escrow": str(10**24 - 1),
        "status": "open",
        "created_height": 3,
        "history_root": "00" * 32,
        "history": [],
        "coordinator": None,
        "validation": None,
        "epsilon_spent": 3_500_000,
        "delta_spent": 4_000_000,
        "round_log": [
            rnd(1, 1_000_000, done),
            rnd(2, 1_000_000, aborted),
            rnd(3, 1_000_000, None, expired=40),
            rnd(4, 500_000, None),
        ],
        "final_model": None,
    }


def test_rounds_and_tasks_frames() -> None:
    pytest.importorskip("pandas")
    from deai.frames import rounds_frame, tasks_frame

    df = rounds_frame(task_json(), [{"round": 1, "accuracy": 0.8, "loss": 0.5}])
    assert list(df["state"]) == ["completed", "aborted", "expired", "open"]
    assert list(df["epsilon_cumulative"]) == [1.0, 2.0, 3.0, 3.5]
    assert list(df["epsilon_cumulative_fixed"]) == [1_000_000, 2_000_000, 3_000_000, 3_500_000]
    assert df.loc[1, "survivors"] == 2 and df.loc[1, "dropouts"] == 1
    assert df.loc[1, "score_mean"] == 0.75 and df.loc[1, "accuracy"] == 0.8
    assert df["accuracy"].isna().sum() == 3
    tasks = tasks_frame([task_json()])
    assert tasks.loc[7, "rounds_opened"] == 4 and tasks.loc[7, "rounds_completed"] == 2
    assert tasks.loc[7, "reward"] == 10**24  # exact, not a float
    assert tasks.loc[7, "epsilon_spent"] == 3.5


def test_without_pandas_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.delitem(sys.modules, "deai.frames", raising=False)
    with pytest.raises(ImportError, match=r"deai\[pandas\]"):
        importlib.import_module("deai.frames")
