//! deai-node.
