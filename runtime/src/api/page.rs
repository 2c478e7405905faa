//! The phone's page: the read-only web app behind the phone URL (REST spec §2.5), served from
//! assets embedded in the binary, so `cargo build` needs no Node.
//!
//! The assets are built from `runtime/web/phone/src` by `npm ci --prefix runtime/web/phone`
//! into `runtime/web/phone/dist`, which is committed; a test builds them again and compares
//! (`tests/phone_page.rs`). Paths: `/` and any unknown path give `index.html` (the page routes
//! by its URL's fragment); a path that tries to leave the root is refused with 400. Every asset
//! is sent with an `ETag` and `Cache-Control: no-cache`, so a phone revalidates instead of
//! downloading again, and gzipped to a client that takes it (each asset compressed once, on
//! first use: xterm.js goes from about 490 KB to about 120 KB); the page itself with a content
//! security policy that allows nothing but its own scripts, styles and connections.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name (the URL path without the leading slash).
    pub name: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset {
            name: $name,
            bytes: include_bytes!(concat!("../../web/phone/dist/", $name)),
        }),*]
    };
}

/// The page's files, as `dist/MANIFEST` lists them (a test checks the two agree).
pub const ASSETS: &[Asset] = assets![
    "index.html",
    "app.js",
    "connection.js",
    "coordinator.js",
    "detail.js",
    "list.js",
    "token.js",
    "ui.js",
    "style.css",
    "xterm.js",
    "xterm.css",
    "addon-fit.js",
];

/// The page's file.
const INDEX: &str = "index.html";

/// What the page may load and reach: its own scripts, styles (xterm.js adds style elements)
/// and connections (the WebSocket), nothing else; no framing, no forms, no base changes.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Why a path gets no asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// It would leave the root (`..`, a backslash, an encoded byte, NUL).
    OutsideRoot,
}

/// The asset for `raw_path` (still percent-encoded): the named file, or the page for `/` and
/// any name the page does not have.
///
/// # Errors
/// A path that could name something outside the root.
pub fn lookup(raw_path: &str) -> Result<&'static Asset, Refused> {
    let name = raw_path.trim_start_matches('/');
    if name.split('/').any(|segment| segment == "..") || name.contains(['\\', '%', '\0']) {
        return Err(Refused::OutsideRoot);
    }
    Ok(ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .unwrap_or_else(|| index()))
}

fn index() -> &'static Asset {
    ASSETS
        .iter()
        .find(|asset| asset.name == INDEX)
        .unwrap_or(&ASSETS[0])
}

/// The content type of a file called `name`, by its extension.
#[must_use]
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Each asset gzipped (best compression), made once.
static GZIPPED: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing into memory cannot fail.
            let _ = encoder.write_all(asset.bytes);
            encoder.finish().unwrap_or_default()
        })
        .collect()
});

/// Whether a request with `headers` takes gzip (`Accept-Encoding` names it, not with `q=0`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|part| part.strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok());
            name.eq_ignore_ascii_case("gzip") && weight.is_none_or(|q| q > 0.0)
        })
}

/// Each asset's entity tag: a hash of its bytes, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| format!("\"{:016x}\"", fnv1a(asset.bytes)))
        .collect()
});

/// FNV-1a, 64 bits: enough to tell versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Answers a request for `raw_path` with `request_headers`: the asset, 304 when the client's
/// copy is current, 400 for a path outside the root.
pub fn serve(raw_path: &str, request_headers: &HeaderMap) -> Response {
    let Ok(asset) = lookup(raw_path) else {
        return (StatusCode::BAD_REQUEST, "Bad request").into_response();
    };
    let at = ASSETS
        .iter()
        .position(|known| std::ptr::eq(known, asset))
        .unwrap_or_default();
    let gzip = takes_gzip(request_headers);
    // The two representations are told apart by their tags.
    let etag = if gzip {
        format!("{}-gz\"", ETAGS[at].trim_end_matches('"'))
    } else {
        ETAGS[at].clone()
    };
    let etag = &etag;
    let current = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        (
            [
                (header::CONTENT_TYPE, content_type(asset.name)),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            GZIPPED[at].clone(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(asset.name))],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    if asset.name.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, Refused, content_type, lookup, takes_gzip};
    use axum::http::{HeaderMap, HeaderValue, header};

    fn accepting(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn gzip_is_sent_only_to_a_client_that_takes_it() {
        assert!(takes_gzip(&accepting("gzip, deflate, br")));
        assert!(takes_gzip(&accepting("br;q=1.0, GZIP;q=0.5")));
        assert!(!takes_gzip(&accepting("gzip;q=0")));
        assert!(!takes_gzip(&accepting("gzip; q=0.000")));
        assert!(!takes_gzip(&accepting("br, deflate")));
        assert!(!takes_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_root_and_unknown_paths_give_the_page_and_known_names_their_file() {
        assert_eq!(lookup("/").map(|a| a.name), Ok("index.html"));
        assert_eq!(lookup("/agent/x").map(|a| a.name), Ok("index.html"));
        assert_eq!(lookup("//app.js").map(|a| a.name), Ok("app.js"));
        for asset in ASSETS {
            assert_eq!(
                lookup(&format!("/{}", asset.name)).map(|a| a.name),
                Ok(asset.name)
            );
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
        }
    }

    #[test]
    fn paths_that_could_leave_the_root_are_refused() {
        for path in ["/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/a\\b", "/a\0"] {
            assert_eq!(
                lookup(path).map(|a| a.name),
                Err(Refused::OutsideRoot),
                "{path}"
            );
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("xterm.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("xterm.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("MANIFEST"), "application/octet-stream");
    }
}
