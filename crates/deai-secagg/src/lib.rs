//! deai-secagg.
