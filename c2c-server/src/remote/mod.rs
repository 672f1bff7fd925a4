//! The other end of the hub: a machine that talks to a hub (`--hub URL`, `C2C_HUB`, with the
//! token in `C2C_TOKEN`) needs no database of its own. [`client`] speaks the hub's JSON API for
//! the command line and the hooks, [`relay`] makes the stdio server a relay that forwards each
//! tool call to the hub's MCP endpoint and passes the hub's pushes on as channel events, and
//! [`retry`] is how both ride out a hub that restarts: they try again with growing pauses,
//! saying so on stderr, but never repeat a write the hub may already have made.

pub mod client;
pub mod relay;
pub mod retry;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the hub is and how to reach it.
#[derive(Debug, Clone)]
pub struct HubTarget {
    /// The hub's base URL, without `/mcp` (`https://host:7420`).
    pub base: String,
    /// The secret sent as `Authorization: Bearer`.
    pub token: String,
    /// A PEM certificate (or CA) to trust instead of the system's roots (`--hub-ca`).
    pub ca: Option<PathBuf>,
    /// The room the client means (`--room`), sent with every request: the hub refuses it
    /// when the token is for another room.
    pub room: Option<String>,
}

/// How long to wait for the TCP and TLS handshake with the hub.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl HubTarget {
    /// The hub at `url` (with or without its `/mcp`), with the token from `C2C_TOKEN`.
    pub fn new(url: &str, ca: Option<&Path>, room: Option<&str>) -> Result<HubTarget, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let base = trimmed.strip_suffix("/mcp").unwrap_or(trimmed);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--hub / C2C_HUB {url:?} is not an http:// or https:// URL (e.g. https://hub.example:7420)"
            ));
        }
        let token = std::env::var("C2C_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                "talking to a hub needs its token in C2C_TOKEN (made on the hub with \
                 claude-c2c token create --room ROOM)"
                    .to_string()
            })?;
        Ok(HubTarget {
            base: base.to_string(),
            token,
            ca: ca.map(Path::to_path_buf),
            room: room.map(String::from),
        })
    }

    /// The hub's MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// An HTTP client for the hub: rustls, trusting `--hub-ca` alone when given.
    pub fn http_client(&self) -> Result<reqwest::Client, String> {
        crate::tls::install_provider();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(room) = &self.room {
            let value = room
                .parse()
                .map_err(|_| format!("the room {room:?} cannot be sent in an HTTP header"))?;
            headers.insert(crate::hub::ROOM_HEADER, value);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .default_headers(headers);
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read --hub-ca {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--hub-ca {} holds no PEM certificate: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up an HTTP client for the hub: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::HubTarget;

    // One test sets C2C_TOKEN for all the cases, so no two tests race on the variable.
    #[test]
    fn a_hub_url_is_taken_with_or_without_its_mcp_path_and_needs_a_token() {
        // SAFETY: no other test of this binary reads or writes C2C_TOKEN.
        unsafe { std::env::remove_var("C2C_TOKEN") };
        let err = HubTarget::new("https://hub.example:7420", None, None).unwrap_err();
        assert!(err.contains("C2C_TOKEN"), "{err}");
        // SAFETY: as above.
        unsafe { std::env::set_var("C2C_TOKEN", " c2c_abc \n") };
        for url in [
            "https://hub.example:7420",
            "https://hub.example:7420/",
            "https://hub.example:7420/mcp",
            " https://hub.example:7420/mcp/ ",
        ] {
            let target = HubTarget::new(url, None, Some("shop")).unwrap();
            assert_eq!(target.base, "https://hub.example:7420", "{url}");
            assert_eq!(target.mcp_url(), "https://hub.example:7420/mcp");
            assert_eq!(target.token, "c2c_abc");
            assert_eq!(target.room.as_deref(), Some("shop"));
        }
        for bad in ["hub.example:7420", "ftp://hub.example", ""] {
            let err = HubTarget::new(bad, None, None).unwrap_err();
            assert!(
                err.contains("not an http:// or https:// URL"),
                "{bad}: {err}"
            );
        }
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let target = HubTarget::new("https://hub.example", Some(missing), None).unwrap();
        let err = target.http_client().unwrap_err();
        assert!(
            err.contains("cannot read --hub-ca /nonexistent/ca.pem"),
            "{err}"
        );
        // SAFETY: as above.
        unsafe { std::env::remove_var("C2C_TOKEN") };
    }
}
