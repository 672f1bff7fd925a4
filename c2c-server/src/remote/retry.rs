//! Riding out a hub that restarts or a network that drops: what failed, whether trying again
//! is safe, and the pauses between tries (growing to [`MAX_PAUSE`], for at most
//! [`RETRY_FOR`]), each said on stderr so a person watching knows why nothing happens.

use std::time::{Duration, Instant};

/// How long to keep trying a hub that does not answer before giving up.
pub const RETRY_FOR: Duration = Duration::from_secs(120);

/// The longest pause between two tries.
pub const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How a request to the hub failed.
#[derive(Debug)]
pub enum Failure {
    /// It never reached the hub (no connection, or a proxy said the hub is down): trying
    /// again cannot repeat anything.
    NotSent(String),
    /// The connection broke after the request went out: the hub may have acted on it.
    Lost(String),
    /// The hub answered with a refusal that trying again would not change.
    Refused(String),
}

impl Failure {
    /// The failure's message.
    pub fn message(&self) -> &str {
        match self {
            Failure::NotSent(m) | Failure::Lost(m) | Failure::Refused(m) => m,
        }
    }
}

/// The pauses between tries of one request.
pub struct Backoff {
    started: Instant,
    pause: Duration,
    what: String,
    // What was said last, and when: a hub that stays away is reported again only when the
    // failure changes or every [`SAY_AGAIN`].
    said: Option<(String, Instant)>,
}

/// How often a failure that goes on is said again on stderr.
pub const SAY_AGAIN: Duration = Duration::from_secs(30);

impl Backoff {
    /// Pauses for a request described as `what` (for stderr).
    pub fn new(what: impl Into<String>) -> Self {
        Backoff {
            started: Instant::now(),
            pause: Duration::from_millis(250),
            what: what.into(),
            said: None,
        }
    }

    /// Waits before the next try after `failure`, saying so on stderr; `false` when the time
    /// for trying is up.
    pub async fn pause(&mut self, failure: &str) -> bool {
        if self.started.elapsed() + self.pause > RETRY_FOR {
            return false;
        }
        let repeat = self
            .said
            .as_ref()
            .is_some_and(|(last, at)| last == failure && at.elapsed() < SAY_AGAIN);
        if !repeat {
            eprintln!(
                "claude-c2c: {} failed ({failure}); trying again for up to {} s",
                self.what,
                RETRY_FOR.saturating_sub(self.started.elapsed()).as_secs()
            );
            self.said = Some((failure.to_string(), Instant::now()));
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }
}

/// Sorts a reqwest error into a [`Failure`].
pub fn classify(e: &reqwest::Error) -> Failure {
    let text = describe(e);
    if is_tls(e) {
        // The certificate will be as untrusted next time.
        Failure::Refused(format!(
            "{text} (the hub's certificate is not trusted here: for a self-signed or private \
             one, give it with --hub-ca PEM or C2C_HUB_CA)"
        ))
    } else if e.is_connect() {
        Failure::NotSent(text)
    } else if e.is_builder() || e.is_redirect() {
        Failure::Refused(text)
    } else {
        Failure::Lost(text)
    }
}

// Whether TLS failed (a certificate not trusted, a handshake refused): rustls's error among
// the causes, perhaps inside I/O errors (which hide what they wrap from `source`).
fn is_tls(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if holds_tls_error(cause) {
            return true;
        }
        source = cause.source();
    }
    false
}

fn holds_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => holds_tls_error(inner),
        None => false,
    }
}

/// A reqwest error with its causes: reqwest's own message names only the outermost error
/// ("error sending request"), its causes say what happened (connection refused, certificate
/// unknown).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
