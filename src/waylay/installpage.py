"""The install page: how a client gets waylay's CA and learns to trust it (MISSION.md point 8).

Through the proxy, `http://waylay.test/` (and the proxy's own address, requested directly) is
answered by waylay itself with this page: the CA certificate in PEM, DER and PKCS#12, its
SHA-256 fingerprint, and short steps per platform. This module only builds responses — status,
headers and body for a request path — from the CA it is handed; the connection code decides
which requests are for the page and writes the answer.

Every body is built once per CA (`InstallPage`); `respond` is a dictionary lookup. The page
is self-contained — no script, no external resource, the one inline stylesheet allowed by its
hash in a `Content-Security-Policy` that allows nothing else — because it is served over plain
HTTP to any client of the proxy. That is also why it shows the fingerprint: what arrives over
plain HTTP can be compared with what `waylay ca export` prints on the proxy's machine.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    # Only its attributes are read: importing cryptography would pull in `socket`.
    from waylay.certs.ca import CertificateAuthority

INSTALL_HOST = "waylay.test"

Fields = list[tuple[bytes, bytes]]


class InstallResponse(NamedTuple):
    status: int
    headers: Fields
    body: bytes


def subject_hash_old(ca: CertificateAuthority) -> str:
    """OpenSSL's `-subject_hash_old`: the file name Android's system store expects."""
    digest = hashlib.md5(ca.cert.subject.public_bytes(), usedforsecurity=False).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def fingerprint_text(ca: CertificateAuthority) -> str:
    """The SHA-256 fingerprint as browsers and `openssl x509 -fingerprint` show it."""
    return ":".join(f"{byte:02X}" for byte in ca.fingerprint_sha256)


_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em;
       color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
code, pre { font: 0.9em/1.4 ui-monospace, monospace; background: #f2f2f2; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.downloads a { display: inline-block; margin: 0 0.6em 0.4em 0; padding: 0.4em 0.8em;
               border: 1px solid #888; border-radius: 4px; text-decoration: none; }
.fingerprint { word-break: break-all; }
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>waylay: install the CA certificate</title>
<style>{style}</style>
</head>
<body>
<h1>Install waylay's CA certificate</h1>
<p>This page is served by the waylay proxy at <code>{proxy}</code>, not by the Internet.
waylay reads HTTPS traffic by presenting certificates it signs with its own certificate
authority (CA). Trust that CA on this device, and HTTPS through the proxy works without
warnings.</p>
<p class="downloads">
<a href="/cert/pem" download="waylay-ca-cert.pem">PEM (.pem)</a>
<a href="/cert/cer" download="waylay-ca-cert.cer">DER (.cer)</a>
<a href="/cert/p12" download="waylay-ca-cert.p12">PKCS#12 (.p12)</a>
</p>
<p>SHA-256 fingerprint:<br><code class="fingerprint">{fingerprint}</code></p>
<p>This page came over plain HTTP: compare the fingerprint with the one the proxy's machine
shows
(<code>waylay ca export --format pem | openssl x509 -noout -fingerprint -sha256</code>). Anyone who
has this CA's private key can read this device's HTTPS traffic; remove the CA when you are
done.</p>

<h2>Linux (system store)</h2>
<p>Debian, Ubuntu (the file must end in <code>.crt</code>):</p>
<pre>sudo cp waylay-ca-cert.pem /usr/local/share/ca-certificates/waylay.crt
sudo update-ca-certificates</pre>
<p>Fedora, RHEL, CentOS:</p>
<pre>sudo cp waylay-ca-cert.pem /etc/pki/ca-trust/source/anchors/waylay.pem
sudo update-ca-trust</pre>
<p>Arch Linux:</p>
<pre>sudo trust anchor --store waylay-ca-cert.pem</pre>
<p>Firefox and Chrome on Linux do not read this store: see below.</p>

<h2>Firefox</h2>
<p>Settings &rarr; Privacy &amp; Security &rarr; Certificates &rarr; View Certificates
&rarr; Authorities &rarr; Import: choose <code>waylay-ca-cert.pem</code> and tick
&ldquo;Trust this CA to identify websites&rdquo;. Or, with NSS's <code>certutil</code>
(package <code>libnss3-tools</code> or <code>nss-tools</code>), for a profile directory:</p>
<pre>certutil -d sql:$HOME/.mozilla/firefox/PROFILE -A -t C,, -n waylay -i waylay-ca-cert.pem</pre>

<h2>Chrome, Chromium, Edge</h2>
<p>On Linux they use the NSS database in <code>~/.pki/nssdb</code>: Settings &rarr; Privacy
and security &rarr; Security &rarr; Manage certificates &rarr; Authorities &rarr; Import, or</p>
<pre>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n waylay -i waylay-ca-cert.pem</pre>
<p>On macOS and Windows they use the system store: follow the steps for your system.</p>

<h2>macOS</h2>
<p>Open <code>waylay-ca-cert.pem</code> in Keychain Access, add it to the
<em>System</em> keychain, double-click &ldquo;waylay CA&rdquo;, open Trust and set
&ldquo;When using this certificate&rdquo; to &ldquo;Always Trust&rdquo;. Or in a
terminal:</p>
<pre>sudo security add-trusted-cert -d -r trustRoot \\
    -k /Library/Keychains/System.keychain waylay-ca-cert.pem</pre>

<h2>Windows</h2>
<p>Open <code>waylay-ca-cert.cer</code> &rarr; Install Certificate &rarr; Local Machine
&rarr; &ldquo;Place all certificates in the following store&rdquo; &rarr; Trusted Root
Certification Authorities. Or in an administrator prompt:</p>
<pre>certutil -addstore root waylay-ca-cert.cer</pre>

<h2>Android</h2>
<p>Download <code>waylay-ca-cert.cer</code>, then Settings &rarr; Security (on some devices
&rarr; More security settings &rarr; Encryption &amp; credentials) &rarr; Install a
certificate &rarr; CA certificate. That is the <em>user</em> store: browsers trust it, but
apps targeting Android 7 or later ignore user CAs unless their
<code>network_security_config</code> trusts them.</p>
<p>For those apps, on a rooted device or an emulator with a writable system image, install
the CA into the <em>system</em> store under OpenSSL's old subject hash:</p>
<pre>adb root &amp;&amp; adb remount
adb push waylay-ca-cert.pem /system/etc/security/cacerts/{subject_hash}.0
adb shell chmod 644 /system/etc/security/cacerts/{subject_hash}.0
adb reboot</pre>
<p>Android 14 and later read the system store from
<code>/apex/com.android.conscrypt/cacerts</code> instead.</p>

<h2>iOS, iPadOS</h2>
<p>Open <code>http://{install_host}/cert/pem</code> in Safari and allow the download;
install the profile in Settings &rarr; General &rarr; VPN &amp; Device Management; then
enable full trust in Settings &rarr; General &rarr; About &rarr; Certificate Trust
Settings.</p>

<h2>Command-line tools and languages</h2>
<pre>export HTTPS_PROXY=http://{proxy} HTTP_PROXY=http://{proxy}
export SSL_CERT_FILE=$PWD/waylay-ca-cert.pem        # OpenSSL, Python's ssl, many tools
export REQUESTS_CA_BUNDLE=$PWD/waylay-ca-cert.pem   # Python requests
export NODE_EXTRA_CA_CERTS=$PWD/waylay-ca-cert.pem  # Node.js (added to its own CAs)
export CURL_CA_BUNDLE=$PWD/waylay-ca-cert.pem       # curl
curl --proxy http://{proxy} --cacert waylay-ca-cert.pem https://example.com/</pre>
<p><code>SSL_CERT_FILE</code>, <code>REQUESTS_CA_BUNDLE</code> and
<code>CURL_CA_BUNDLE</code> replace the default CA bundle: with them set, only sites
reached through waylay verify.</p>
</body>
</html>
"""

_NOT_FOUND = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>waylay: not found</title></head>
<body><p>Not found. The CA certificate and install steps are at <a href="/">/</a>.</p></body>
</html>
"""

_DOWNLOADS = {
    "/cert/pem": (b"application/x-x509-ca-cert", "pem"),
    "/cert/cer": (b"application/pkix-cert", "cer"),
    "/cert/p12": (b"application/x-pkcs12", "p12"),
}


class InstallPage:
    """The install page's responses for one CA, built once; `respond` looks them up."""

    def __init__(self, ca: CertificateAuthority, *, proxy_address: str) -> None:
        page = _PAGE.format(
            style=_STYLE,
            proxy=html.escape(proxy_address),
            fingerprint=fingerprint_text(ca),
            subject_hash=subject_hash_old(ca),
            install_host=INSTALL_HOST,
        )
        bodies = {"pem": ca.cert_pem, "cer": ca.cert_der, "p12": ca.cert_p12}
        self._responses = {"/": _html(200, page)}
        for path, (content_type, extension) in _DOWNLOADS.items():
            disposition = b'attachment; filename="waylay-ca-cert.%s"' % extension.encode()
            self._responses[path] = _response(
                200,
                bodies[extension],
                [(b"Content-Type", content_type), (b"Content-Disposition", disposition)],
            )
        self._not_found = _html(404, _NOT_FOUND)

    def respond(self, target: str) -> InstallResponse:
        """The response for a request target in origin form; the query string is ignored."""
        path = target.partition("?")[0].partition("#")[0]
        status, headers, body = self._responses.get(path, self._not_found)
        return InstallResponse(status, list(headers), body)  # the caller may add headers


def install_response(path: str, ca: CertificateAuthority, *, proxy_address: str) -> InstallResponse:
    """One response without keeping an `InstallPage`; builds every body, so prefer the class."""
    return InstallPage(ca, proxy_address=proxy_address).respond(path)


def _html(status: int, text: str) -> InstallResponse:
    return _response(
        status,
        text.encode("utf-8"),
        [
            (b"Content-Type", b"text/html; charset=utf-8"),
            (b"Content-Security-Policy", CONTENT_SECURITY_POLICY.encode("ascii")),
        ],
    )


def _response(status: int, body: bytes, headers: Fields) -> InstallResponse:
    return InstallResponse(
        status,
        [
            *headers,
            (b"Content-Length", b"%d" % len(body)),
            (b"Cache-Control", b"no-store"),
            (b"X-Content-Type-Options", b"nosniff"),
        ],
        body,
    )
