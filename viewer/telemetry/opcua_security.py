"""OPC UA certificates and trust, Qt-free: the viewer's own certificate, the servers' certificates it trusts.

Everything lives in the user's configuration folder (``<config>``: ``$XDG_CONFIG_HOME``, else ``~/.config`` on
Linux, ``~/Library/Application Support`` on macOS, ``%APPDATA%`` on Windows)::

    <config>/twin-viewer/opcua/own/cert.der, key.pem  the viewer's certificate for this user, made on first use
                                                      (the key readable by the user only)
    <config>/twin-viewer/opcua/trusted/               server certificates the viewer trusts (DER or PEM)
    <config>/twin-viewer/opcua/rejected/<SHA1>.der    server certificates it was offered and refused
    <config>/twin-viewer/opcua/known_servers.json     per endpoint, the trusted certificate it offered last

A server's certificate is never trusted silently: it must be in ``trusted/`` (or be the layout's
``server_certificate``). One that is not is refused with its subject and SHA-1 thumbprint (the OPC UA
thumbprint) and saved in ``rejected/`` for an administrator to move into ``trusted/``; one that differs from
the certificate the endpoint offered last time is refused as *changed*.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CERTIFICATE_DAYS = 5 * 365 + 1  # the viewer's own certificate: a control-room PC should not lose its trust yearly
CERTIFICATE_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class OpcUaSecurityError(Exception):
    """A certificate or trust problem, said as a sentence for the status bar (what happened, what to do)."""


class CertificateFileError(OpcUaSecurityError):
    """A certificate or key file that cannot be used: its path and why."""


class UnsupportedSecurityError(OpcUaSecurityError):
    """The server offers no endpoint with the layout's security policy and mode."""


class UntrustedServerCertificateError(OpcUaSecurityError):
    """The server offered a certificate that is not in the trust folder; it was saved in ``rejected/``."""

    def __init__(self, message: str, offered: CertificateInfo, saved_to: Path) -> None:
        super().__init__(message)
        self.offered = offered
        self.saved_to = saved_to


class ServerCertificateChangedError(UntrustedServerCertificateError):
    """The server offered another certificate than the one trusted for it (or than last time)."""

    def __init__(self, message: str, offered: CertificateInfo, saved_to: Path, previous_thumbprint: str) -> None:
        super().__init__(message, offered, saved_to)
        self.previous_thumbprint = previous_thumbprint


# --------------------------------------------------------------------------- folders


def user_config_dir() -> Path:
    """The user's configuration folder (``$XDG_CONFIG_HOME`` wins on every platform: tests point it at a
    temporary folder)."""
    env = os.environ.get("XDG_CONFIG_HOME")
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    return home / ".config"


@dataclass(frozen=True)
class PkiFolders:
    """Where the viewer keeps its OPC UA certificates (see the module docstring)."""

    root: Path

    @classmethod
    def default(cls) -> PkiFolders:
        """``<config>/twin-viewer/opcua``, read from the environment at each call."""
        return cls(user_config_dir() / "twin-viewer" / "opcua")

    @property
    def own(self) -> Path:
        return self.root / "own"

    @property
    def own_certificate(self) -> Path:
        return self.own / "cert.der"

    @property
    def own_key(self) -> Path:
        return self.own / "key.pem"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def known_servers(self) -> Path:
        return self.root / "known_servers.json"


# --------------------------------------------------------------------------- certificates


def thumbprint(der: bytes) -> str:
    """The OPC UA thumbprint of a certificate: SHA-1 of its DER bytes, 40 upper-case hex digits."""
    return hashlib.sha1(der).hexdigest().upper()


def sha256_fingerprint(der: bytes) -> str:
    """SHA-256 of the DER bytes as ``AB:CD:...``, the way ``openssl x509 -fingerprint -sha256`` writes it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True)
class CertificateInfo:
    """What a person compares: subject, thumbprints, application URI, validity."""

    der: bytes
    subject: str
    thumbprint: str
    sha256: str
    application_uri: str | None
    not_before: datetime
    not_after: datetime
    path: Path | None = None

    @classmethod
    def from_der(cls, der: bytes, path: Path | None = None) -> CertificateInfo:
        """Read a DER certificate; :class:`CertificateFileError` (naming ``path``) if it is not one."""
        from cryptography import x509

        try:
            cert = x509.load_der_x509_certificate(der)
            subject = cert.subject.rfc4514_string()
            not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        except ValueError as exc:
            where = str(path) if path is not None else "the certificate"
            raise CertificateFileError(f"{where}: not an X.509 certificate ({exc})") from None
        uri = None
        with contextlib.suppress(x509.ExtensionNotFound):
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.UniformResourceIdentifier)
            uri = uris[0] if uris else None
        return cls(der, subject, thumbprint(der), sha256_fingerprint(der), uri, not_before, not_after, path)

    def expired(self, now: datetime | None = None) -> bool:
        """Outside its validity period now."""
        now = now or datetime.now(UTC)
        return not self.not_before <= now <= self.not_after

    def describe(self) -> str:
        """One line: subject, SHA-1 thumbprint and SHA-256 fingerprint."""
        return f"{self.subject}, SHA-1 thumbprint {self.thumbprint}, SHA-256 {self.sha256}"


def read_certificate(path: Path) -> CertificateInfo:
    """A certificate file, PEM or DER; :class:`CertificateFileError` naming the file and why."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"{path}: cannot read the certificate ({exc.strerror or exc})") from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        try:
            data = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise CertificateFileError(f"{path}: not a PEM certificate ({exc})") from None
    return CertificateInfo.from_der(data, path)


def first_certificate(der_chain: bytes) -> bytes:
    """The first certificate of a DER chain (a server may send its chain where its certificate belongs)."""
    if len(der_chain) < 4 or der_chain[0] != 0x30:
        return der_chain
    if der_chain[1] & 0x80:  # long form: the length's length, then the length
        count = der_chain[1] & 0x7F
        length = int.from_bytes(der_chain[2:2 + count], "big")
        return der_chain[:2 + count + length]
    return der_chain[:2 + der_chain[1]]


# --------------------------------------------------------------------------- the viewer's own certificate


@dataclass(frozen=True)
class OwnCertificate:
    """The client certificate and key a secured connection uses; ``created``: made just now."""

    certificate: Path
    private_key: Path
    info: CertificateInfo
    created: bool = False

    def announcement(self) -> str:
        """What to say when it was just made: where it is and how to recognise it on the server."""
        return (f"made this viewer's OPC UA certificate {self.certificate} ({self.info.describe()}, application "
                f"URI {self.info.application_uri}): trust it on the server")


def application_uri_for(host: str | None = None, user: str | None = None) -> str:
    """The viewer's application URI on this PC for this user (unique per certificate, as OPC UA asks)."""
    host = host or socket.gethostname() or "localhost"
    if user is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name in this environment (a bare container)
            user = "user"
    return f"urn:{host}:twin-viewer:{user}"


def ensure_own_certificate(folders: PkiFolders | None = None, *, host: str | None = None,
                           user: str | None = None, days: int = CERTIFICATE_DAYS) -> OwnCertificate:
    """This user's client certificate, made on first use (``created`` says so).

    Parameters
    ----------
    folders
        Where it lives (default: :meth:`PkiFolders.default`).
    host, user
        Put in its application URI and subject (default: this PC and user).
    days
        Validity of a new certificate.

    Returns
    -------
    OwnCertificate
        Its paths and details. :class:`CertificateFileError` when an existing one is damaged, expired or does
        not match its key (nothing is overwritten: the message says what to move away), or the folder cannot be
        written.
    """
    folders = folders or PkiFolders.default()
    cert_path, key_path = folders.own_certificate, folders.own_key
    if cert_path.is_file() and key_path.is_file():
        return OwnCertificate(cert_path, key_path, _check_own(folders), False)
    try:
        created = _make_own(folders, host, user, days)
    except OSError as exc:
        raise CertificateFileError(f"cannot make this viewer's OPC UA certificate in {folders.own}: "
                                   f"{exc.strerror or exc}") from None
    info = _check_own(folders)
    own = OwnCertificate(cert_path, key_path, info, created)
    if created:
        log.warning("%s", own.announcement())
    return own


def _check_own(folders: PkiFolders) -> CertificateInfo:
    """The existing own certificate, checked: readable, in date, matching its key."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    info = read_certificate(folders.own_certificate)
    how_to_renew = (f"move the folder {folders.own} away: a new certificate is made at the next connection "
                    f"(and must be trusted on the server again)")
    if info.expired():
        raise CertificateFileError(f"this viewer's OPC UA certificate {folders.own_certificate} is valid from "
                                   f"{info.not_before:%Y-%m-%d} to {info.not_after:%Y-%m-%d}, not now: "
                                   f"{how_to_renew}")
    try:
        key = load_pem_private_key(folders.own_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateFileError(f"{folders.own_key}: not a usable private key ({exc}): {how_to_renew}") from None
    from cryptography import x509

    cert_key = x509.load_der_x509_certificate(info.der).public_key()
    if key.public_key().public_numbers() != cert_key.public_numbers():  # type: ignore[union-attr]
        raise CertificateFileError(f"{folders.own_key} is not the key of {folders.own_certificate}: {how_to_renew}")
    if os.name == "posix" and folders.own_key.stat().st_mode & 0o077:
        log.warning("%s can be read by other users than its owner: it is this viewer's OPC UA private key",
                    folders.own_key)
    return info


def _make_own(folders: PkiFolders, host: str | None, user: str | None, days: int) -> bool:
    """Make key and certificate in a private temporary folder, then rename it to ``own/`` in one step: two
    viewers starting together never pair one's key with the other's certificate. False: another was first."""
    from asyncua.crypto import cert_gen  # OPC UA's extensions (OPC 10000-6 6.2.2), as asyncua's servers check them
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    host = host or socket.gethostname() or "localhost"
    uri = application_uri_for(host, user)
    name = f"twin-viewer {uri.rsplit(':', 1)[-1]}@{host}"
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {"organizationName": "twin-viewer"},
        [x509.UniformResourceIdentifier(uri), x509.DNSName(host)], [ExtendedKeyUsageOID.CLIENT_AUTH], days=days)
    folders.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".own-", dir=folders.root))  # mode 0700
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(staging / "key.pem", flags, 0o600)  # private from its first byte
        with os.fdopen(fd, "wb") as f:
            f.write(cert_gen.dump_private_key_as_pem(key))
        (staging / "cert.der").write_bytes(cert.public_bytes(Encoding.DER))
        if folders.own.exists():  # half there (one file lost): keep it aside, nothing is deleted
            folders.own.rename(folders.root / f"own.incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            staging.rename(folders.own)
        except OSError:
            if folders.own_certificate.is_file() and folders.own_key.is_file():
                return False  # another viewer made it at the same moment: use that one
            raise
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def client_certificate_info(folders: PkiFolders | None = None) -> tuple[Path, str]:
    """The viewer's OPC UA client certificate for this user (made now if there is none yet) and its SHA-1
    thumbprint: what an administrator trusts on the server (for the window's menu and the command line)."""
    own = ensure_own_certificate(folders)
    return own.certificate, own.info.thumbprint


# --------------------------------------------------------------------------- the server's certificate


def trusted_certificates(folders: PkiFolders, pinned: Path | None = None) -> dict[str, CertificateInfo]:
    """The certificates in ``trusted/`` and the layout's ``server_certificate``, by thumbprint; a file that is
    not a certificate is logged (with its path and why) and skipped."""
    found: dict[str, CertificateInfo] = {}
    if pinned is not None:
        info = read_certificate(pinned)
        found[info.thumbprint] = info
    with contextlib.suppress(FileNotFoundError):
        for path in sorted(folders.trusted.iterdir()):
            if path.suffix.lower() not in CERTIFICATE_SUFFIXES or not path.is_file():
                continue
            try:
                info = read_certificate(path)
            except CertificateFileError as exc:
                log.warning("OPC UA trust folder: %s (skipped)", exc)
                continue
            found.setdefault(info.thumbprint, info)
    return found


def check_server_certificate(der: bytes, *, endpoint: str, server: str, folders: PkiFolders | None = None,
                             pinned: Path | None = None) -> CertificateInfo:
    """Trust the certificate a server offers, or refuse it with what to do.

    Parameters
    ----------
    der
        The server's certificate (DER), from its endpoint description.
    endpoint
        The endpoint URL as the layout names it (the key of ``known_servers.json``).
    server
        The server's name for the message (application name and URI).
    folders
        The trust folders (default: :meth:`PkiFolders.default`).
    pinned
        The layout's ``server_certificate``, trusted beside ``trusted/``.

    Returns
    -------
    CertificateInfo
        The trusted certificate. Raises :class:`UntrustedServerCertificateError` (or
        :class:`ServerCertificateChangedError`) after saving it as ``rejected/<thumbprint>.der``.
    """
    folders = folders or PkiFolders.default()
    offered = CertificateInfo.from_der(first_certificate(der))
    known = _known_servers(folders)
    previous = known.get(endpoint)
    if offered.thumbprint in trusted_certificates(folders, pinned):
        if offered.expired():  # trusted by an administrator: still used (refusing would blind the control room)
            log.warning("the trusted certificate of %s (%s) is valid from %s to %s, not now: ask the server's "
                        "administrator to renew it", endpoint, offered.thumbprint, f"{offered.not_before:%Y-%m-%d}",
                        f"{offered.not_after:%Y-%m-%d}")
        if previous is not None and previous.get("thumbprint") != offered.thumbprint:
            log.warning("the certificate of %s changed to %s (trusted): was %s", endpoint, offered.thumbprint,
                        previous.get("thumbprint"))
        if previous is None or previous.get("thumbprint") != offered.thumbprint:
            known[endpoint] = {"thumbprint": offered.thumbprint, "subject": offered.subject,
                               "trusted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            _save_known_servers(folders, known)
        return offered
    saved = _save_rejected(folders, offered)
    move = (f"copy {saved} into {folders.trusted}{os.sep} (the viewer connects at its next attempt)")
    was = None
    if pinned is not None:
        pinned_info = read_certificate(pinned)
        was = (pinned_info.thumbprint, pinned_info.subject, f"the layout's server_certificate {pinned}")
    elif previous is not None and previous.get("thumbprint") not in (None, offered.thumbprint):
        was = (str(previous["thumbprint"]), str(previous.get("subject", "")), "trusted before")
    if was is not None:
        message = (f"the server's certificate changed: was {was[0]} ({was[1]}; {was[2]}), now {offered.thumbprint} "
                   f"({offered.subject}), offered by {server} at {endpoint}. Not connected: if the server's "
                   f"certificate was renewed (ask its administrator for the thumbprint), {move}; otherwise "
                   f"something may be posing as the server")
        raise ServerCertificateChangedError(message, offered, saved, was[0])
    message = (f"the OPC UA server {server} at {endpoint} offers a certificate this viewer does not trust: "
               f"{offered.subject}, SHA-1 thumbprint {offered.thumbprint}. Not connected: if that is the server's "
               f"certificate (compare the thumbprint with the one the server shows), {move}")
    raise UntrustedServerCertificateError(message, offered, saved)


def _save_rejected(folders: PkiFolders, offered: CertificateInfo) -> Path:
    path = folders.rejected / f"{offered.thumbprint}.der"
    if not path.is_file():
        try:
            folders.rejected.mkdir(parents=True, exist_ok=True)
            folders.trusted.mkdir(parents=True, exist_ok=True)  # so the folder to copy into is there to see
            _write_atomic(path, offered.der)
        except OSError as exc:
            log.warning("cannot save the refused server certificate as %s: %s", path, exc.strerror or exc)
    return path


def _known_servers(folders: PkiFolders) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(folders.known_servers.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # damaged: said, then rewritten at the next trusted connection
        log.warning("%s: cannot read the servers' last certificates (%s); starting afresh", folders.known_servers,
                    exc)
        return {}
    if not isinstance(data, dict):
        log.warning("%s: not a JSON object; starting afresh", folders.known_servers)
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _save_known_servers(folders: PkiFolders, known: dict[str, dict[str, Any]]) -> None:
    try:
        folders.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(folders.known_servers, json.dumps(known, indent=1, sort_keys=True).encode())
    except OSError as exc:
        log.warning("cannot write %s: %s", folders.known_servers, exc.strerror or exc)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def certificate_report(folders: PkiFolders | None = None) -> str:
    """What an administrator needs to let this viewer in and to trust a server, as lines of text (the
    ``twin-viewer opcua-certificate`` command and the window's Help menu). Makes the certificate on first use;
    :class:`CertificateFileError` when it cannot."""
    folders = folders or PkiFolders.default()
    own = ensure_own_certificate(folders)
    info = own.info
    trusted = sorted(p.name for p in folders.trusted.glob("*")) if folders.trusted.is_dir() else []
    rejected = sorted(p.name for p in folders.rejected.glob("*.der")) if folders.rejected.is_dir() else []
    lines = [
        "This viewer's OPC UA client certificate" + (" (made just now)" if own.created else "") + ":",
        f"  file             {own.certificate}",
        f"  subject          {info.subject}",
        f"  application URI  {info.application_uri}",
        f"  SHA-1 thumbprint {info.thumbprint}",
        f"  SHA-256          {info.sha256}",
        f"  valid            {info.not_before:%Y-%m-%d} to {info.not_after:%Y-%m-%d}",
        "To let it in, copy the file into the server's trusted certificates (or accept it in the server's "
        "certificate list) and compare the thumbprint.",
        f"Servers this viewer trusts: {folders.trusted}" + (f" ({', '.join(trusted)})" if trusted else " (none)"),
        f"Server certificates it refused: {folders.rejected}" + (
            f" ({', '.join(rejected)}): compare the thumbprint in the file name with the one the server shows, "
            f"then move the file into {folders.trusted}" if rejected else " (none)"),
    ]
    return "\n".join(lines)
