//! The door of the hub: every request to `/mcp` and `/v1` must name this hub in its `Host`
//! (and, from a browser, its `Origin`), which stops a web page from reaching a hub on the
//! reader's machine by DNS rebinding, and must carry `Authorization: Bearer TOKEN` for a token
//! that exists and is not revoked (looked up by its hash on every request, so a revoke takes
//! effect at once); a client that names its room (`x-c2c-room`) must have a token for it. The
//! token's [`Identity`] goes into the request's extensions, where the MCP
//! sessions and the API find it. A refusal is a short JSON error: 403 for the host or origin,
//! 401 for the token, with no pointer to an OAuth server (there is none).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{Hub, error_response};
use crate::store::tokens;

/// The header that names an MCP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// Who a request comes from: the token it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's number.
    pub token_id: i64,
    /// The room it reaches.
    pub room: String,
    /// The one name it may act as, if bound to one.
    pub name: Option<String>,
}

/// The host names requests may address: the loopback names, the address listened on (unless
/// it is a wildcard) and `extra` (`--allow-host`), lowercase.
pub fn allowed_hosts(bound: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    if !bound.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    hosts.extend(extra.iter().map(|h| h.trim().to_ascii_lowercase()));
    hosts
}

/// Whether `authority` (a `Host` header, or the host of an `Origin`) names an allowed host:
/// its host part is allowed, or the whole `host:port` is.
pub fn host_allowed(allowed: &[String], authority: &str) -> bool {
    let authority = authority.trim().to_ascii_lowercase();
    let host = match authority.strip_prefix('[') {
        // [v6] or [v6]:port, and nothing else after the bracket.
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => v6.to_string(),
            Some((v6, port))
                if port.len() > 1
                    && port.starts_with(':')
                    && port[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                v6.to_string()
            }
            _ => return false,
        },
        None => authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map(|(host, _)| host.to_string())
            .unwrap_or_else(|| authority.clone()),
    };
    allowed.iter().any(|a| *a == host || *a == authority)
}

/// Whether an `Origin` header names an allowed host (`null`, and anything without a scheme,
/// do not).
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    match origin.split_once("://") {
        Some((scheme, authority)) if scheme == "http" || scheme == "https" => {
            host_allowed(allowed, authority)
        }
        _ => false,
    }
}

/// The secret of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// The host a request names: its `Host` header, or the authority of its URI (HTTP/2).
pub fn request_host(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(String::from)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// Checks `Host`, `Origin` and the token, then passes the request on with its [`Identity`].
pub async fn guard(State(hub): State<Arc<Hub>>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = request_host(&req);
    match &host {
        Some(host) if host_allowed(&hub.allowed_hosts, host) => {}
        _ => {
            let shown = host.as_deref().unwrap_or("(none)");
            return error_response(
                StatusCode::FORBIDDEN,
                format!(
                    "the hub does not answer to the host {shown:?}: start it with --allow-host \
                     NAME for each name clients use to reach it"
                ),
            );
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        if !origin_allowed(&hub.allowed_hosts, origin) {
            return error_response(
                StatusCode::FORBIDDEN,
                format!(
                    "requests from pages at {origin} are not accepted: the hub answers pages \
                     of its own host names only (--allow-host)"
                ),
            );
        }
    }
    let Some(secret) = bearer(headers) else {
        return unauthorized(
            "missing token: send Authorization: Bearer TOKEN (make one on the hub with \
             claude-c2c token create --room ROOM)",
        );
    };
    let found = {
        let conn = hub.auth.lock().unwrap_or_else(|p| p.into_inner());
        tokens::find(&conn, secret)
    };
    match found {
        Ok(Some(token)) => {
            let room = req
                .headers()
                .get(super::ROOM_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|r| !r.is_empty());
            if let Some(room) = room
                && room != token.room
            {
                return error_response(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this token reaches room \"{}\", not \"{room}\": use a token for that \
                         room, or leave --room / C2C_ROOM unset",
                        token.room
                    ),
                );
            }
            req.extensions_mut().insert(Identity {
                token_id: token.id,
                room: token.room.clone(),
                name: token.name.clone(),
            });
            let req = match json_checked(req, hub.request_limit()).await {
                Ok(req) => req,
                Err(refusal) => return refusal,
            };
            let delete = req.method() == axum::http::Method::DELETE;
            let session = req
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            if let Some(session) = &session {
                let owner = hub
                    .owners
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(session)
                    .copied();
                // Another token's session is answered as if it did not exist.
                if owner.is_some_and(|owner| owner != token.id) {
                    return error_response(
                        StatusCode::NOT_FOUND,
                        "no such MCP session: initialize a session of your own",
                    );
                }
            }
            let mut response = next.run(req).await;
            let mut owners = hub.owners.lock().unwrap_or_else(|p| p.into_inner());
            match (&session, response.headers().get(SESSION_HEADER)) {
                // An initialize that opened a session: it is this token's.
                (None, Some(opened)) => {
                    if let Ok(opened) = opened.to_str() {
                        owners.insert(opened.to_string(), token.id);
                    }
                }
                (Some(ended), _) if delete && response.status().is_success() => {
                    owners.remove(ended);
                }
                _ => {}
            }
            drop(owners);
            if delete && response.status() == StatusCode::ACCEPTED {
                // rmcp answers a session's end with 202, which the Python SDK reports as a
                // failure to end it (it expects 200 or 204); the session has ended.
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                // The rest of the body was not read: the connection cannot carry another
                // request, and a client that reused it would see it break.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
        Ok(None) => unauthorized(
            "unknown or revoked token: check C2C_TOKEN, or ask the hub's owner for a new one",
        ),
        Err(e) => {
            tracing::error!(error = %e, "token look-up failed");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the hub cannot read its tokens now ({e}); try again"),
            )
        }
    }
}

// Reads a JSON body sent to /mcp and refuses one that is not JSON with 400 (rmcp would answer
// any body it cannot parse with 415, as if its type were wrong) or too large with 413; other
// requests pass untouched.
async fn json_checked(req: Request, limit: usize) -> Result<Request, Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if req.method() != axum::http::Method::POST || !req.uri().path().starts_with("/mcp") || !is_json
    {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let mut refusal = error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over the hub's limit of {limit} bytes"),
            );
            refusal
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(refusal);
        }
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        ));
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn unauthorized(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"claude-c2c\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_with_or_without_their_port() {
        let bound: SocketAddr = "10.0.0.5:7420".parse().unwrap();
        let allowed = allowed_hosts(bound, &["Hub.Example.org".into(), "proxy:8443".into()]);
        for ok in [
            "localhost:7420",
            "127.0.0.1",
            "[::1]:7420",
            "10.0.0.5:7420",
            "hub.example.org",
            "HUB.example.org:443",
            "proxy:8443",
        ] {
            assert!(host_allowed(&allowed, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "10.0.0.6:7420",
            "proxy:9000",
            "localhost.evil",
            "",
        ] {
            assert!(!host_allowed(&allowed, bad), "{bad}");
        }
        let wildcard = allowed_hosts("0.0.0.0:7420".parse().unwrap(), &[]);
        assert!(!host_allowed(&wildcard, "0.0.0.0:7420"));
        assert!(origin_allowed(&allowed, "https://hub.example.org"));
        assert!(origin_allowed(&allowed, "http://localhost:7420"));
        for bad in [
            "null",
            "https://evil.example",
            "hub.example.org",
            "file://hub.example.org",
        ] {
            assert!(!origin_allowed(&allowed, bad), "{bad}");
        }
    }

    #[test]
    fn the_bearer_secret_is_read_from_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer c2c_abc"),
        );
        assert_eq!(bearer(&headers), Some("c2c_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  c2c_abc "),
        );
        assert_eq!(bearer(&headers), Some("c2c_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Zm9v"),
        );
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
