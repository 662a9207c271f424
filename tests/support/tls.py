"""Self-signed certificates for local stand-ins served over HTTPS. Each names its own subject and
key identifier, so several can sit in one CA bundle (a client trusting every stand-in at once)."""

import contextlib
import datetime
import ipaddress
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp

from tests.support.services import on_a_port


def self_signed(directory: Path, *, name: str) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, written into `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def serving_https(app: ASGIApp, *, name: str) -> Iterator[tuple[str, str]]:
    """`app` served over HTTPS on 127.0.0.1 (a spare port), on a thread, until the block ends:
    its base URL and the CA bundle a client must trust."""
    with tempfile.TemporaryDirectory() as directory:
        cert, key = self_signed(Path(directory), name=name)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            lifespan="off",
        )
        with on_a_port(config, name=f"{name}-stand-in") as port:
            yield f"https://127.0.0.1:{port}", str(cert)
