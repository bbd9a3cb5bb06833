"""Why a connection to the broker failed, in words an operator or an IT admin can act on.

paho reports a failed connection attempt without its cause; the client reads
the exception being handled (:func:`describe_failure` is called from paho's
``except OSError`` block) and names which check failed: the broker's
certificate (expired, not yet valid, signed by another CA, issued for another
host name), the client certificate the broker wants, a port that does not
speak TLS, a refused or unreachable port, an unknown host name. Retrying never
falls back to plain TCP: a TLS layout only ever connects with TLS.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FailureFacts:
    """What the description needs to know about the connection that was tried."""

    address: str  # mqtt(s)://host:port
    host: str
    port: int
    tls: bool
    ca_file: Path | None = None


# OpenSSL verify codes (x509_vfy.h) that mean "signed by a CA this client does not trust".
_UNTRUSTED = {2, 18, 19, 20, 21, 27}


def _certificate(exc: ssl.SSLCertVerificationError, facts: FailureFacts) -> str:
    code = exc.verify_code
    message = exc.verify_message or "verification failed"
    if code == 10:
        return f"TLS: the broker's certificate has expired ({facts.address})"
    if code == 9:
        return f"TLS: the broker's certificate is not valid yet; check this PC's clock ({facts.address})"
    if code in (62, 64) or "mismatch" in message:
        return (f"TLS: the broker's certificate is not issued for {facts.host!r} (host name mismatch); "
                f"connect by the name the certificate names ({facts.address})")
    if code in _UNTRUSTED:
        trusted = f"the CA in {facts.ca_file.name}" if facts.ca_file else "a CA this PC trusts"
        return f"TLS: the broker's certificate is not signed by {trusted} ({message}; {facts.address})"
    if code == 23:
        return f"TLS: the broker's certificate has been revoked ({facts.address})"
    return f"TLS: the broker's certificate was refused: {message} ({facts.address})"


def _tls_alert(exc: ssl.SSLError, facts: FailureFacts) -> str:
    reason = (exc.reason or "").upper()
    if "CERTIFICATE_REQUIRED" in reason:
        return f"TLS: the broker requires a client certificate and none was given ({facts.address})"
    if "HANDSHAKE_FAILURE" in reason:
        return (f"TLS: the broker ended the handshake; it may require a client certificate or share no "
                f"cipher with this PC ({facts.address})")
    if any(word in reason for word in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN",
                                       "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED")):
        return f"TLS: the broker refused this PC's client certificate ({reason.lower()}; {facts.address})"
    if "CERTIFICATE_EXPIRED" in reason:
        return f"TLS: the broker says this PC's client certificate has expired ({facts.address})"
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "PACKET_LENGTH_TOO_LONG" in reason:
        return f"TLS: {facts.host}:{facts.port} does not answer in TLS; is it a plain MQTT port? ({facts.address})"
    if "UNSUPPORTED_PROTOCOL" in reason or "PROTOCOL_VERSION" in reason or "NO_PROTOCOLS" in reason:
        return f"TLS: the broker and this PC share no TLS version ({reason.lower()}; {facts.address})"
    return f"TLS handshake failed: {exc.reason or exc} ({facts.address})"


def describe_failure(exc: BaseException | None, facts: FailureFacts) -> str:
    """One sentence naming why connecting failed (``exc`` is the exception paho caught, if known)."""
    if exc is None:
        return f"cannot reach {facts.address}; retrying"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc, facts)
    if isinstance(exc, ssl.CertificateError):  # paho's own host name check (older Pythons)
        return (f"TLS: the broker's certificate is not issued for {facts.host!r} (host name mismatch) "
                f"({facts.address})")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError) or (
            facts.tls and isinstance(exc, ConnectionResetError | BrokenPipeError)):
        return (f"TLS: {facts.host}:{facts.port} closed the connection during the TLS handshake; "
                f"is it a plain MQTT port? ({facts.address})")
    if isinstance(exc, ssl.SSLError):
        return _tls_alert(exc, facts)
    if isinstance(exc, socket.gaierror):
        return f"host name {facts.host!r} not found ({exc.strerror or exc}; {facts.address})"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections at {facts.host}:{facts.port} (connection refused); retrying"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {facts.host}:{facts.port} (timed out); retrying"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to {facts.host} ({exc.strerror}); retrying"
    return f"cannot reach {facts.address}: {exc}; retrying"


def is_tls_failure(detail: str) -> bool:
    """Whether a description says a TLS check failed (retrying alone will not fix it)."""
    return detail.startswith("TLS")
