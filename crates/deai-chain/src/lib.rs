//! deai-chain.
