"""HTTP/1 parsing, framing and serialisation over bytes; this package does no IO."""
