//! `PUT/GET/HEAD /v1/blobs/{hash}`: the node's content-addressed blob store over HTTP.
//!
//! An upload is streamed into the store ([`crate::blobs::BlobUpload`]): hashed as it arrives, cut
//! off at the first byte over the store's limit, and linked under its name only once the hash
//! matched. A failed upload, or a client that disconnects mid-body (the handler is dropped, and
//! the upload with it), leaves nothing behind. A refused upload's body is still read (bounded)
//! before the answer, so that clients which write before they read see it. These routes carry their own size limit, the
//! store's, instead of the API's limit for transactions.
//!
//! On a validator, a blob stored from a client is announced to the other validators, which fetch
//! a copy ([`deai_chain::blob_exchange`]); a `GET` or `HEAD` of a blob this validator lacks asks
//! them for it (for up to [`FETCH_WAIT`]) before answering 404.
//!
//! An upload is a signed request for this node, from a key the store's
//! [`UploadPolicy`](crate::blob_access::UploadPolicy) accepts, within its quotas (see
//! [`crate::blob_access`]); `GET /v1/identity` tells a signer which key and chain to sign for.

use axum::{
    Json, Router,
    body::Body,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body_util::BodyExt as _;

use super::ApiError;
use super::types::{ErrorBody, PutBlobResponse};
use crate::{
    auth,
    blob_access::{Identity, UploadPolicy, UploadRefusal},
    blobs::{BlobError, BlobStore, parse_hash},
};

/// The OpenAPI description of [`blob_routes`].
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_blob, get_blob, head_blob, identity),
    components(schemas(Identity))
)]
pub(super) struct BlobApi;

/// How long a read of a blob this validator lacks waits for the other validators to deliver it.
pub(crate) const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the blob routes serve: the store, and on a validator the chain whose other validators
/// exchange blobs with this one.
#[derive(Clone)]
struct Blobs {
    store: BlobStore,
    peers: Option<deai_chain::Handle>,
}

/// The blob routes, serving `store` (and, with `peers`, announcing new blobs to the other
/// validators and fetching missing ones from them); merge them into any router (their state is
/// their own).
pub fn blob_routes<S>(store: BlobStore, peers: Option<deai_chain::Handle>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/v1/blobs/{hash}",
            get(get_blob).head(head_blob).put(put_blob),
        )
        .route("/v1/identity", get(identity))
        // The body is streamed and bounded by the store itself, never buffered by an extractor.
        .layer(DefaultBodyLimit::disable())
        .route_layer(axum::middleware::from_fn(
            super::content_type::octet_stream_puts,
        ))
        .with_state(Blobs { store, peers })
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            BlobError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "blob_too_large"),
            BlobError::HashMismatch { .. } => (StatusCode::BAD_REQUEST, "hash_mismatch"),
            BlobError::BadHash(_) => (StatusCode::BAD_REQUEST, "bad_hash"),
            BlobError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "blob_store_busy"),
            BlobError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "blob_corrupt"),
            BlobError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "blob_store_failed"),
        };
        ApiError {
            status,
            code,
            message,
        }
    }
}

fn not_found(hash: &str) -> ApiError {
    ApiError::not_found(
        "blob_not_found",
        format!(
            "no blob {hash} on this node (nor, on a validator, on the other validators); ask the \
             node that recorded it"
        ),
    )
}

/// Runs blocking store work off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "blob_store_failed",
            message: format!("blob store task failed: {e}"),
        }),
    }
}

/// How much of a refused upload's body the node still reads, and discards, before it answers.
///
/// HTTP/1.1 clients such as hyper's write the whole body before they read the answer: a server
/// that answers 413 and closes mid-body makes them report a broken pipe, never the 413. Reading
/// the rest first (as nginx's lingering close does) lets them see why, within a bound in bytes
/// and time so that a refused client cannot hold the connection for free.
const REFUSED_DRAIN_BYTES: u64 = 128 << 20;
/// The time bound of that read.
const REFUSED_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Store a blob under its BLAKE3 hash (the body must hash to it).
#[utoipa::path(put, path = "/v1/blobs/{hash}", tag = "blobs", params(("hash" = String, Path, description = "BLAKE3 of the bytes, hex")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored", body = PutBlobResponse),
        (status = 200, description = "already held", body = PutBlobResponse),
        (status = 400, description = "bytes do not hash to the name", body = ErrorBody),
        (status = 401, description = "unsigned, badly signed, stale, replayed, or signed for another node", body = ErrorBody),
        (status = 403, description = "the key may not upload here (upload_not_allowed)", body = ErrorBody),
        (status = 413, description = "larger than the store accepts, or over the key's quota", body = ErrorBody),
        (status = 503, description = "too many uploads at once", body = ErrorBody),
        (status = 507, description = "the store's total quota or the disk's free-space floor", body = ErrorBody),
    ))]
async fn put_blob(
    State(blobs): State<Blobs>,
    Path(hash): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    mut body: Body,
) -> Result<Response, ApiError> {
    let answer = store_upload(&blobs, &hash, &uri, &headers, &mut body).await;
    if answer.is_err() {
        drain(&mut body).await;
    }
    answer
}

/// The key and chain a signed request to this node names (`GET /v1/identity`).
#[utoipa::path(get, path = "/v1/identity", tag = "blobs",
    responses(
        (status = 200, description = "what signed requests to this node must name", body = Identity),
        (status = 404, description = "this node takes no signed uploads", body = ErrorBody),
    ))]
async fn identity(State(blobs): State<Blobs>) -> Result<Json<Identity>, ApiError> {
    let policy = blobs
        .store
        .upload_policy()
        .ok_or_else(|| ApiError::not_found("no_identity", "this node takes no signed uploads"))?;
    Ok(Json(policy.identity()))
}

/// Rules 1 and 2 of [`crate::blob_access`]: a signed request for this node over the blob's
/// name, from a key the policy accepts; only then recorded in the replay guard.
async fn admit_uploader(
    store: &BlobStore,
    expected: &deai_ledger::Digest,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(UploadPolicy, ed25519_dalek::VerifyingKey), ApiError> {
    let refused = |e: UploadRefusal| {
        store.count_upload_refused(e.code());
        ApiError::from(e)
    };
    let policy = store
        .upload_policy()
        .cloned()
        .ok_or_else(|| refused(UploadRefusal::Closed))?;
    // The blob's name is the BLAKE3 of its bytes: the signature over the body is checked now,
    // the bytes against the name as they stream in.
    let signed = auth::authenticate(
        headers,
        policy.chain_id(),
        policy.me(),
        "PUT",
        auth::signed_path(uri),
        &expected.0,
        auth::now_micros(),
    )
    .map_err(|e| {
        store.count_upload_refused(e.code());
        ApiError::from(e)
    })?;
    policy.authorize(&signed.key).await.map_err(refused)?;
    let key = policy.guard().admit(&signed).map_err(ApiError::from)?;
    Ok((policy, key))
}

/// Reads and discards what is left of `body`, up to [`REFUSED_DRAIN_BYTES`] and
/// [`REFUSED_DRAIN_TIME`]; a broken body ends it too.
async fn drain(body: &mut Body) {
    let read = async {
        let mut seen = 0u64;
        while seen <= REFUSED_DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_DRAIN_TIME, read).await;
}

async fn store_upload(
    blobs: &Blobs,
    hash: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, ApiError> {
    let store = &blobs.store;
    let expected = parse_hash(hash)?;
    let (policy, key) = admit_uploader(store, &expected, uri, headers).await?;
    let max = store.max_size();
    // An honest Content-Length over the limit is refused before a byte is stored.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(size) = declared.filter(|&s| s > max) {
        return Err(BlobError::TooLarge { size, max }.into());
    }
    let refused = |e: UploadRefusal| {
        store.count_upload_refused(e.code());
        ApiError::from(e)
    };
    // The announced length is reserved at once; a chunked body is reserved as it arrives. A
    // blob already held is only hashed, never written: it costs no quota.
    let held = store.contains(&expected);
    let first = if held { 0 } else { declared.unwrap_or(0) };
    let mut reservation = policy.reserve(store, &key, first).map_err(refused)?;
    let mut upload = store.upload(Some(expected))?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(
                "upload_aborted",
                format!("the upload broke off after {} bytes: {e}", upload.size()),
            )
        })?;
        if let Ok(chunk) = frame.into_data() {
            if !held {
                reservation
                    .cover(upload.size().saturating_add(chunk.len() as u64))
                    .map_err(refused)?;
            }
            // A chunk goes to the page cache (microseconds); the fsync is in `finish`, off the executor.
            upload.write(&chunk)?;
        }
    }
    let outcome = blocking(move || upload.finish()).await?;
    reservation.commit(outcome.created, outcome.size);
    if let (true, Some(chain)) = (outcome.created, &blobs.peers) {
        chain.announce_blob(outcome.hash, outcome.size);
    }
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = PutBlobResponse {
        hash: outcome.hash,
        size: outcome.size,
    };
    Ok((status, Json(answer)).into_response())
}

/// A blob's bytes.
#[utoipa::path(get, path = "/v1/blobs/{hash}", tag = "blobs", params(("hash" = String, Path, description = "BLAKE3 of the bytes, hex")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody),
        (status = 503, description = "too many fetches from other validators at once", body = ErrorBody),
        (status = 504, description = "the other validators did not deliver it in time", body = ErrorBody),
        (status = 507, description = "this store would not take it from the other validators", body = ErrorBody),
    ))]
async fn get_blob(
    State(blobs): State<Blobs>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let digest = parse_hash(&hash)?;
    let store = blobs.store.clone();
    let mut bytes = blocking(move || store.get(&digest)).await?;
    if bytes.is_none() && fetched(&blobs, digest).await? {
        let store = blobs.store.clone();
        bytes = blocking(move || store.get(&digest)).await?;
    }
    let bytes = bytes.ok_or_else(|| not_found(&hash))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Asks the other validators for a blob this one lacks: whether it is now stored. A node without
/// peers, or a blob no validator holds, is `false` (the caller answers 404).
async fn fetched(blobs: &Blobs, hash: deai_ledger::Digest) -> Result<bool, ApiError> {
    use deai_chain::blob_exchange::FetchError;
    let Some(chain) = &blobs.peers else {
        return Ok(false);
    };
    match tokio::time::timeout(FETCH_WAIT, chain.fetch_blob(hash)).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(FetchError::NotFound(_) | FetchError::Unavailable)) => Ok(false),
        Ok(Err(e @ FetchError::Busy)) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "blob_fetch_busy",
            message: e.to_string(),
        }),
        Ok(Err(e @ FetchError::Refused { .. })) => Err(ApiError {
            status: StatusCode::INSUFFICIENT_STORAGE,
            code: "blob_fetch_refused",
            message: e.to_string(),
        }),
        Err(_) => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "blob_fetch_timeout",
            message: format!(
                "the other validators did not deliver blob {hash} within {} s; retry",
                FETCH_WAIT.as_secs()
            ),
        }),
    }
}

/// Whether a blob is held, and its size (`content-length`).
#[utoipa::path(head, path = "/v1/blobs/{hash}", tag = "blobs", params(("hash" = String, Path, description = "BLAKE3 of the bytes, hex")),
    responses((status = 200, description = "held"), (status = 404, description = "not held")))]
async fn head_blob(
    State(blobs): State<Blobs>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let digest = parse_hash(&hash)?;
    let store = blobs.store.clone();
    let mut size = blocking(move || store.size_of(&digest)).await?;
    if size.is_none() && fetched(&blobs, digest).await? {
        let store = blobs.store.clone();
        size = blocking(move || store.size_of(&digest)).await?;
    }
    let size = size.ok_or_else(|| not_found(&hash))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::empty(),
    )
        .into_response())
}
