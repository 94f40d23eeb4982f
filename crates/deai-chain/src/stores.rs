//! Settings of the Commonware immutable archives the chain keeps (marshal's finalized blocks and
//! certificates, and the history's blocks, executed records and transaction index), in one place
//! so every store is opened the same way.
//!
//! An immutable archive opens in time independent of how much it holds (its values sit in
//! size-targeted sections found through a fixed-size ordinal and a disk-resident hash table), which
//! is what keeps a restart constant-time; a variable journal, by contrast, re-reads its newest
//! section from the front when opened.

use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::archive::immutable;
use commonware_utils::{NZU64, NZUsize};
use std::num::{NonZeroU64, NonZeroUsize};

const WRITE_BUFFER: NonZeroUsize = NZUsize!(1 << 20);
/// Values in one on-disk section before the next is started.
const VALUE_SECTION_BYTES: u64 = 64 << 20;

/// How one archive is laid out. Fixed for the life of its data: `items_per_section` in particular
/// must never change for an existing store.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    /// Initial slots of the key hash table.
    pub table_initial: u32,
    /// Slots moved per step while the table grows.
    pub table_resize_chunk: u32,
    /// Indices per ordinal section.
    pub items_per_section: NonZeroU64,
    /// zstd level for values, if compressed.
    pub compression: Option<u8>,
    /// Buffer for reading sections back when the archive opens.
    pub replay_buffer: NonZeroUsize,
}

impl Shape {
    /// A store of one entry per block (blocks, certificates, executed records).
    pub(crate) const PER_BLOCK: Self = Self {
        table_initial: 1024,
        table_resize_chunk: 1024,
        items_per_section: NZU64!(4096),
        compression: None,
        replay_buffer: NZUsize!(4 << 20),
    };

    /// A store of one entry per transaction.
    pub(crate) const PER_TX: Self = Self {
        table_initial: 65_536,
        table_resize_chunk: 16_384,
        items_per_section: NZU64!(65_536),
        compression: None,
        replay_buffer: NZUsize!(1 << 20),
    };
}

/// The configuration of the archive `name` under `prefix` (partitions `<prefix>-<name>-*`).
pub(crate) fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    codec_config: C,
    shape: Shape,
) -> immutable::Config<C> {
    let partition = |part: &str| format!("{prefix}-{name}-{part}");
    immutable::Config {
        metadata_partition: partition("metadata"),
        freezer_table_partition: partition("freezer-table"),
        freezer_table_initial_size: shape.table_initial,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: shape.table_resize_chunk,
        freezer_key_partition: partition("freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: partition("freezer-value"),
        freezer_value_target_size: VALUE_SECTION_BYTES,
        freezer_value_compression: shape.compression,
        ordinal_partition: partition("ordinal"),
        items_per_section: shape.items_per_section,
        codec_config,
        replay_buffer: shape.replay_buffer,
        freezer_key_write_buffer: WRITE_BUFFER,
        freezer_value_write_buffer: WRITE_BUFFER,
        ordinal_write_buffer: WRITE_BUFFER,
    }
}
