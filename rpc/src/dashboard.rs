//! The dashboard every node serves on its RPC port: a static page (HTML, CSS and JS compiled into the
//! binary with `include_str!`: no build step, no CDN, nothing fetched from elsewhere) that reads the node's
//! own JSON-RPC and its `subscribenewblocks` WebSocket and updates live.
//!
//! # How the page gets data without the cookie, and why that is safe
//!
//! A browser cannot read `<datadir>/.cookie`, and asking operators to paste it into a page would put the
//! secret that can also *write* (send transactions, claim peg-ins, vote `resumepeg`) into browser storage.
//! So the page talks to a separate endpoint, `/dashboard/rpc` (HTTP POST and WebSocket), where:
//! - **only the read-only methods of [`READ_ONLY_METHODS`] are served**, without credentials. Every other
//!   method gets error [`NOT_ALLOWED`] there (checked per call, batches and notifications included, by
//!   [`ReadOnlyLayer`]); what they can show is public chain data any peer can fetch over p2p anyway, plus
//!   this node's peers and bitcoind health.
//! - the same **Host** and **Origin** checks as the authenticated RPC apply ([`crate::auth::Guard`]): a
//!   web page on another site cannot use the visitor's browser against the node (its `Origin` is refused,
//!   and the server sends no CORS headers, so the browser would not let it read an answer either), and a
//!   DNS-rebinding page (whose requests carry `Host: evil.example`) is refused too.
//! - the JSON-RPC at `/` is unchanged: every method there needs Basic auth, as before.
//!
//! The page itself is served with a strict Content-Security-Policy (scripts and connections to this
//! origin only, no framing), so even a value shown on it cannot load code from elsewhere.
//!
//! Operators who do not want the dashboard (e.g. an RPC port reachable from a LAN) turn it off with
//! `RpcServerConfig::dashboard = false`: `/dashboard/*` then answers 404 and nothing is served without
//! credentials.

mod access;

pub use access::{Access, ReadOnlyLayer, ReadOnlyService, NOT_ALLOWED};

use jsonrpsee::server::{HttpBody, HttpResponse};

/// Where the page lives; `GET /` (not a WebSocket upgrade) redirects here.
pub const PAGE_PATH: &str = "/dashboard/";
/// The read-only JSON-RPC endpoint the page uses (HTTP POST and WebSocket).
pub const RPC_PATH: &str = "/dashboard/rpc";

/// The methods served without credentials at [`RPC_PATH`]: reads only, and exactly what the page uses.
/// Writers (`sendrawtransaction`, `claimpegin`, `resumepeg`) are never here (a test checks it).
pub const READ_ONLY_METHODS: &[&str] = &[
    "getblockchaininfo",
    "getblockcount",
    "getblockhash",
    "getblock",
    "getcommit",
    "gettransaction",
    "getaccount",
    "listtransactions",
    "getmempoolinfo",
    "getpeerinfo",
    "getnetworkinfo",
    "getvalidators",
    "getevidence",
    "getfederationinfo",
    "getpegstatus",
    "listpegouts",
    "getpegoutstatus",
    "getreserveproof",
    "getconsensusstate",
    "getbitcoinview",
    "subscribenewblocks",
    "unsubscribenewblocks",
];

/// Methods that change something; never served without credentials.
pub const WRITE_METHODS: &[&str] = &[
    "sendrawtransaction",
    "claimpegin",
    "resumepeg",
    "approvefederationchange",
    "submitfederationchange",
    "pausesigning",
    "resumesigning",
];

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { path: "/dashboard/", content_type: "text/html; charset=utf-8", body: include_str!("dashboard/index.html") },
    Asset {
        path: "/dashboard/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("dashboard/app.js"),
    },
    Asset {
        path: "/dashboard/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("dashboard/style.css"),
    },
];

/// Scripts, styles and connections from this origin only (`'self'` covers `ws:` to the same host and
/// port); no plugins, no framing, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the guard does with a request, decided from its method and path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A static file of the page.
    Asset(usize),
    /// A redirect to the page.
    ToPage,
    /// The read-only JSON-RPC endpoint (served as `/`, marked [`Access::ReadOnly`]).
    ReadOnlyRpc,
    /// Under `/dashboard` but nothing there (or the dashboard is off).
    NotFound,
    /// Everything else: the authenticated JSON-RPC.
    Rpc,
}

/// Where a request goes. `upgrade` is whether it asks for a WebSocket.
pub fn route(method: &http::Method, path: &str, upgrade: bool, enabled: bool) -> Route {
    let under = path == "/dashboard" || path.starts_with("/dashboard/");
    if !enabled {
        return if under { Route::NotFound } else { Route::Rpc };
    }
    if path == RPC_PATH {
        return Route::ReadOnlyRpc;
    }
    if method == http::Method::GET
        && !upgrade
        && (path == "/" || path == "/dashboard" || path == "/dashboard/index.html")
    {
        return Route::ToPage;
    }
    if under {
        if method == http::Method::GET || method == http::Method::HEAD {
            if let Some(i) = ASSETS.iter().position(|a| a.path == path) {
                return Route::Asset(i);
            }
        }
        return Route::NotFound;
    }
    Route::Rpc
}

fn with_common_headers(mut resp: HttpResponse, content_type: &'static str) -> HttpResponse {
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    h.insert(http::header::X_FRAME_OPTIONS, http::HeaderValue::from_static("DENY"));
    h.insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    h.insert(http::header::CONTENT_SECURITY_POLICY, http::HeaderValue::from_static(CSP));
    resp
}

/// The response for a [`Route`] the guard answers itself (`None` for the two RPC routes).
pub fn respond(route: Route) -> Option<HttpResponse> {
    match route {
        Route::Asset(i) => {
            let a = ASSETS.get(i)?;
            Some(with_common_headers(HttpResponse::new(HttpBody::from(a.body)), a.content_type))
        }
        Route::ToPage => {
            let mut resp = HttpResponse::new(HttpBody::from(format!("the dashboard is at {PAGE_PATH}\n")));
            *resp.status_mut() = http::StatusCode::SEE_OTHER;
            resp.headers_mut().insert(http::header::LOCATION, http::HeaderValue::from_static(PAGE_PATH));
            Some(with_common_headers(resp, "text/plain; charset=utf-8"))
        }
        Route::NotFound => {
            let mut resp = HttpResponse::new(HttpBody::from("not found\n"));
            *resp.status_mut() = http::StatusCode::NOT_FOUND;
            Some(with_common_headers(resp, "text/plain; charset=utf-8"))
        }
        Route::ReadOnlyRpc | Route::Rpc => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn routes() {
        let get = Method::GET;
        assert_eq!(route(&get, "/", false, true), Route::ToPage);
        assert_eq!(route(&get, "/", true, true), Route::Rpc, "websocket at / stays the authenticated rpc");
        assert_eq!(route(&Method::POST, "/", false, true), Route::Rpc);
        assert_eq!(route(&get, "/dashboard", false, true), Route::ToPage);
        assert_eq!(route(&get, "/dashboard/", false, true), Route::Asset(0));
        assert_eq!(route(&get, "/dashboard/app.js", false, true), Route::Asset(1));
        assert_eq!(route(&Method::POST, "/dashboard/app.js", false, true), Route::NotFound);
        assert_eq!(route(&get, "/dashboard/../.cookie", false, true), Route::NotFound);
        assert_eq!(route(&Method::POST, RPC_PATH, false, true), Route::ReadOnlyRpc);
        assert_eq!(route(&get, RPC_PATH, true, true), Route::ReadOnlyRpc);
        // Off: nothing of the dashboard, and `/` is the authenticated rpc for every request.
        assert_eq!(route(&Method::POST, RPC_PATH, false, false), Route::NotFound);
        assert_eq!(route(&get, "/dashboard/", false, false), Route::NotFound);
        assert_eq!(route(&get, "/", false, false), Route::Rpc);
    }

    #[test]
    fn assets_are_served_with_a_strict_policy() {
        let resp = respond(Route::Asset(0)).unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
        let csp = resp.headers()[http::header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(resp.headers().keys().all(|k| !k.as_str().starts_with("access-control")));
        for a in ASSETS {
            assert!(!a.body.contains("http://") && !a.body.contains("https://"), "{} loads nothing remote", a.path);
        }
    }

    #[test]
    fn read_only_list_has_no_writer() {
        for w in WRITE_METHODS {
            assert!(!READ_ONLY_METHODS.contains(w), "{w} must need credentials");
        }
    }
}
