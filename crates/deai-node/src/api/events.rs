//! `GET /v1/events`: finalized heights as server-sent events, so a page (the explorer) shows new
//! blocks and round results without polling or a reload.

use std::convert::Infallible;

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;

use super::AppState;

/// Every newly finalized height as an event `block` with data `{"height": H}`. A client that
/// falls behind gets the latest height (it reads the blocks in between itself); the stream ends
/// when the node stops.
#[utoipa::path(get, path = "/v1/events", tag = "ledger",
    responses((status = 200, description = "text/event-stream of `block` events, data `{\"height\": H}`", content_type = "text/event-stream")))]
pub(super) async fn events(
    State(app): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.chain.subscribe_finalized();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let height = *rx.borrow_and_update();
        let event = Event::default()
            .event("block")
            .data(format!("{{\"height\":{height}}}"));
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
