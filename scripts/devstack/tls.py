"""TLS certificates for a stack on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from pathlib import Path

from .base import REPO_ROOT, ServiceError

SELFSIGNED_CERT = REPO_ROOT / "deploy" / "selfsigned-cert"


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1 and localhost in `folder` (cert.pem, key.pem),
    made with `cryptography` (which comes with daphne's autobahn)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def staging_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made by deploy/selfsigned-cert (the staging command
    of docs/deploy.md section 6), falling back to `self_signed_cert` without openssl."""
    if shutil.which("openssl") is None:
        return self_signed_cert(folder)
    out = folder / "staging-tls"
    done = subprocess.run(
        ["sh", str(SELFSIGNED_CERT), "127.0.0.1", str(out), "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise ServiceError(f"deploy/selfsigned-cert failed\n{done.stderr}")
    return out / "fullchain.pem", out / "privkey.pem"
