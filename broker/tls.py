"""The broker's TLS: a private CA and a server certificate, made by `welfare broker tls`.

Kiosks trust only this CA (`WELFARE_MQTT__CA_FILE`, shipped in each device's bundle) and check
the broker's name against the certificate. Keys are ECDSA P-256; a CA that exists is never
replaced (every kiosk trusts it), a server certificate is re-made when its names change.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers and most TLS stacks accept for a leaf certificate


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where a broker's TLS material is."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TlsFiles:
        """The file names `welfare broker tls` uses in `directory`."""
        return cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    """A subject with the project's organisation."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Smart Welfare"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: IP addresses as IPs, everything else as DNS names."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_ca(directory: Path, *, days: int = CA_DAYS) -> bool:
    """Create ca.crt and ca.key in `directory` unless they exist; whether it made them."""
    files = TlsFiles.in_dir(directory)
    key_path = directory / "ca.key"
    if files.ca_file.exists() and key_path.exists():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = _name("Smart Welfare broker CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    files.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(files.ca_file, 0o644)
    return True


def server_names(cert_file: Path) -> list[str]:
    """The names a server certificate is valid for."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    ]


def make_server_cert(directory: Path, *, hosts: list[str], days: int = SERVER_DAYS) -> bool:
    """Create server.crt/server.key signed by the CA in `directory`; whether it made them.

    An existing certificate for the same names is kept; other names make a new one.
    """
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address")
    files = TlsFiles.in_dir(directory)
    wanted = sorted(str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts)
    if (
        files.cert_file.exists()
        and files.key_file.exists()
        and sorted(server_names(files.cert_file)) == wanted
    ):
        return False
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("ca.key is not an EC key made by `welfare broker tls`")
    ca_cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.key_file, key)
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(files.cert_file, 0o644)
    return True


def _is_ip(host: str) -> bool:
    """Whether `host` is an IP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def ensure_tls(directory: Path, *, hosts: list[str]) -> TlsFiles:
    """A CA and a server certificate for `hosts` in `directory`, made when missing."""
    make_ca(directory)
    make_server_cert(directory, hosts=hosts)
    return TlsFiles.in_dir(directory)
