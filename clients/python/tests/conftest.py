"""Shared fixtures: the vectors the Rust side generates, and the repository root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"
#: The deai repository (clients/python/tests/ -> the root).
REPO = HERE.parents[2]


def load(name: str) -> Any:
    """One vector file (written by crates/deai-ledger/tests/it/vectors.rs)."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tx_vectors() -> Any:
    return load("txs.json")


@pytest.fixture(scope="session")
def payment_vectors() -> Any:
    return load("payments.json")


@pytest.fixture(scope="session")
def key_vectors() -> Any:
    return load("keys.json")


@pytest.fixture(scope="session")
def proof_vectors() -> Any:
    return load("proofs.json")
