"""TLS pieces: the ClientHello parser here is pure (no IO); the TLS engine sits beside it."""
