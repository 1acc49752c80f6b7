//! What every HTTP endpoint of ours shares: stakater's address form and the exposition.

use prometheus_client::registry::Registry;

/// Stakater's `:9090` form is accepted: a bare `:PORT` listens on all interfaces.
pub fn bind_addr(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    }
}

/// The text exposition of a registry (the operator's and the in-pod modes').
pub fn encode_registry(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// Served as Prometheus text 0.0.4: stakater's `…_total_by_namespace` name is valid there.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A URL, parsed or not, with what may be user info (between `://` and the last `@`) hidden:
/// for errors and logs that name a proxy or a reload URL.
pub fn without_user_info(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}
