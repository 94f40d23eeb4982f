//! The explorer every node serves at `/`: one page (`explorer/index.html`, `app.js`,
//! `style.css`) and its vendored chart and graph libraries, embedded in the binary, so it works
//! offline and needs no separate server. It reads the node's own `/v1` API; docs/explorer.md.

use axum::{
    Router,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
// `utoipa::path` expands to code that names the crate.
use utoipa as _;

/// An embedded file: its route, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Vendored libraries never change under their name; the page's own files may.
    immutable: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../explorer/index.html"),
        immutable: false,
    },
    Asset {
        path: "/explorer/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../explorer/app.js"),
        immutable: false,
    },
    Asset {
        path: "/explorer/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../explorer/style.css"),
        immutable: false,
    },
    Asset {
        path: "/explorer/vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../explorer/vendor/uPlot.iife.min.js"),
        immutable: true,
    },
    Asset {
        path: "/explorer/vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../explorer/vendor/uPlot.min.css"),
        immutable: true,
    },
    Asset {
        path: "/explorer/vendor/cytoscape.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../explorer/vendor/cytoscape.min.js"),
        immutable: true,
    },
];

fn serve(asset: &'static Asset) -> Response {
    let cache = if asset.immutable {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

/// The explorer's page; its script, style and libraries are under `/explorer/`
/// ([`routes`]).
#[utoipa::path(get, path = "/", tag = "explorer",
    responses((status = 200, description = "the explorer's HTML page (docs/explorer.md)", content_type = "text/html")))]
pub async fn index() -> Response {
    serve(&ASSETS[0])
}

/// The routes of the page's files under `/explorer/` (`GET` only; `/` is [`index`], which the
/// API documents).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS[1..].iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let index = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        let app = std::str::from_utf8(ASSETS[1].body).expect("utf-8");
        for asset in &ASSETS[1..] {
            let named = index.contains(asset.path) || app.contains(asset.path);
            assert!(named, "{} is served but nothing loads it", asset.path);
        }
        for needle in [
            "/explorer/app.js",
            "/explorer/style.css",
            "/explorer/vendor/",
        ] {
            assert!(index.contains(needle) || app.contains(needle), "{needle}");
        }
    }
}
