//! TLS for the hub and its clients: rustls on ring, installed once per process as the
//! provider rustls and reqwest use.

/// Makes ring rustls's crypto provider for this process (a second call does nothing).
pub fn install_provider() {
    // Fails only when a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
