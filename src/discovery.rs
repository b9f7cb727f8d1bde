//! Name resolution through hickory-resolver (never the blocking std resolver).

use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::sync::OnceLock;

fn system_resolver() -> Result<&'static TokioResolver, String> {
    static RESOLVER: OnceLock<Result<TokioResolver, String>> = OnceLock::new();
    RESOLVER
        .get_or_init(|| {
            TokioResolver::builder_tokio()
                .and_then(|b| b.build())
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| e.clone())
}

/// The first address of `host` from the system's resolver configuration.
pub async fn resolve_host(host: &str) -> Result<IpAddr, String> {
    let resolver = system_resolver()?;
    let answer = resolver.lookup_ip(host).await.map_err(|e| e.to_string())?;
    answer
        .iter()
        .next()
        .ok_or_else(|| format!("no address for {host}"))
}
