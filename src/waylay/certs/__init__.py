"""Certificates: waylay's CA (`ca`), the names a forged leaf carries (`names`), forging a leaf
(`forge`), and the cache of TLS server contexts built from forged leaves (`store`)."""
