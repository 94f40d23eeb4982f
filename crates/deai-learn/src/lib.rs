//! deai-learn.
