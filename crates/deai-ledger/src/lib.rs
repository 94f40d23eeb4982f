//! deai-ledger.
