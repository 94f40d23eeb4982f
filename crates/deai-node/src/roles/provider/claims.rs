//! The provider's loops: follow the chain's height, refresh the offers it serves (a won dispute
//! suspends one), and redeem each channel's highest voucher before the channel expires (or once
//! it owes `claim_min`); and, every `sync_ms`, bring the channel log up to date and sync it.
//!
//! A claim is a `ChannelClaim` signed with the provider's key and waited on until final, one at
//! a time (each takes the account's next nonce). A refused claim is logged and retried at the
//! next tick while the channel is still open and unexpired; once the ledger shows the voucher
//! claimed, nothing more is sent for it.

use std::{sync::atomic::Ordering, time::Duration};

use deai_ledger::{ChannelStatus, SignedVoucher, StateKey, TxBody, tx::ChannelClaim};

use super::ProviderRole;

/// Runs until the task is aborted.
pub(super) async fn run(role: ProviderRole) {
    let every = Duration::from_millis(role.inner.cfg.claim_every_ms.max(10));
    loop {
        tokio::time::sleep(every).await;
        tick(&role).await;
    }
}

/// Brings the channel log up to date every `sync_ms`, until the task is aborted.
pub(super) async fn sync(role: ProviderRole) {
    let every = Duration::from_millis(role.inner.cfg.sync_ms.max(1));
    loop {
        tokio::time::sleep(every).await;
        flush(&role).await;
    }
}

/// [`ProviderRole::flush_journal`] on the blocking pool: it writes and syncs a file.
async fn flush(role: &ProviderRole) {
    let role = role.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || role.flush_journal()).await {
        tracing::error!(error = %e, "provider: the channel log flush did not finish");
    }
}

/// One pass: height, offers, log sync, due claims.
pub(super) async fn tick(role: &ProviderRole) {
    let inner = &role.inner;
    match inner.ctx.ledger.status().await {
        Ok(s) => inner.height.store(s.height, Ordering::Relaxed),
        Err(e) => {
            tracing::debug!(error = %e, "provider: cannot read the chain's height");
            return;
        }
    }
    refresh_offers(role).await;
    read_unknown_channels(role).await;
    flush(role).await;
    for (channel, voucher) in due(role) {
        claim(role, channel, voucher).await;
    }
}

async fn refresh_offers(role: &ProviderRole) {
    let ids: Vec<u64> = {
        let offers = role.inner.offers.read().unwrap_or_else(|p| p.into_inner());
        offers.keys().copied().collect()
    };
    for id in ids {
        match super::super::read_entry(&role.inner.ctx, StateKey::Offer(id), "offer").await {
            Ok(offer) => {
                if let Err(e) = role.admit_offer(offer).await {
                    tracing::warn!(offer = id, error = %e.message, "provider: offer refresh failed");
                }
            }
            Err(e) => {
                tracing::debug!(offer = id, error = %e.message, "provider: cannot read offer")
            }
        }
    }
}

/// Reads from the ledger the channels the log holds but this process has not read yet (after a
/// restart), so their vouchers are claimed even if no query comes for them again.
async fn read_unknown_channels(role: &ProviderRole) {
    let unknown: Vec<u64> = role
        .lock_channels()
        .iter()
        .filter(|(_, e)| e.ledger.is_none() && e.paid.voucher.is_some())
        .map(|(id, _)| *id)
        .collect();
    for id in unknown {
        if let Err(e) = role.channel(id, true).await {
            tracing::debug!(channel = id, error = %e.message, "provider: cannot read a logged channel");
        }
    }
}

/// The channels whose highest voucher should be claimed now.
fn due(role: &ProviderRole) -> Vec<(u64, SignedVoucher)> {
    let inner = &role.inner;
    let height = inner.height.load(Ordering::Relaxed);
    let cfg = &inner.cfg;
    let channels = role.lock_channels();
    channels
        .iter()
        .filter_map(|(id, e)| {
            let c = e.ledger.as_ref()?;
            let v = e.paid.voucher.as_ref()?;
            let amount = v.voucher.cumulative_amount;
            let open = c.status == ChannelStatus::Open && height <= c.expiry_height;
            let unclaimed = amount.saturating_sub(c.claimed);
            let near = height.saturating_add(cfg.claim_margin_blocks) >= c.expiry_height;
            let big = cfg.claim_min > 0 && unclaimed >= u128::from(cfg.claim_min);
            (open && unclaimed > 0 && (near || big)).then(|| (*id, v.clone()))
        })
        .collect()
}

async fn claim(role: &ProviderRole, channel: u64, voucher: SignedVoucher) {
    let inner = &role.inner;
    flush(role).await;
    let amount = voucher.voucher.cumulative_amount;
    let body = TxBody::ChannelClaim(ChannelClaim { channel, voucher });
    match super::super::send_tx(&inner.ctx, body).await {
        Ok(applied) => tracing::info!(
            channel,
            amount = %amount,
            height = applied.height,
            "provider: claimed a channel's voucher"
        ),
        Err(e) => tracing::warn!(channel, error = %e.message, "provider: claim refused; retrying"),
    }
    // Read the channel again either way: the ledger's `claimed` decides what is still due.
    if let Err(e) = role.channel(channel, true).await {
        tracing::debug!(channel, error = %e.message, "provider: cannot re-read the channel");
    }
}
