"""Make an RSA key and a self-signed X.509 certificate for a JWT client (e2e harness helper).

    python make_cert.py DIR NAME    -> DIR/NAME.key (PKCS#8 PEM), DIR/NAME.crt (PEM)

The certificate goes into an app's policy `jwt_certificate_pem` (JWT bearer flow,
private_key_jwt client authentication); the key is what the client signs its assertions with.
Uses `cryptography` (pinned in requirements.txt), so the harness needs no openssl binary.
"""

import datetime
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def make(name: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"valet-e2e {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_cert.py DIR NAME")
    out, name = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = make(name)
    (out / f"{name}.key").write_bytes(key_pem)
    (out / f"{name}.key").chmod(0o600)
    (out / f"{name}.crt").write_bytes(cert_pem)
    print(out / f"{name}.key")


if __name__ == "__main__":
    main()
