"""go-plugin's AutoMTLS, for hosts that ask for it.

When the host sets PLUGIN_CLIENT_CERT (its own certificate, PEM), the
plugin must serve TLS with a self-signed certificate of its own, send that
certificate in the handshake line (DER, base64 without padding), and
require the host's certificate from clients. The certificate is made as
go-plugin's Go server makes its own: ECDSA P-256, DNS name localhost, a CA
(the host trusts it as its own root), for server and client auth.

Python's standard library cannot make a certificate: the ``cryptography``
package does it if it is installed, else the ``openssl`` command.
"""

import base64
import os
import shutil
import subprocess
import tempfile


def server_credentials(client_pem):
    """(grpc server credentials, the handshake line's certificate field)."""
    import grpc
    key_pem, cert_pem, cert_der = _self_signed()
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_pem.encode(),
                                        require_client_auth=True)
    return creds, base64.b64encode(cert_der).rstrip(b"=").decode()


def _self_signed():
    try:
        return _with_cryptography()
    except ImportError:
        pass
    if shutil.which("openssl"):
        return _with_openssl()
    raise RuntimeError("the host asks for TLS (PLUGIN_CLIENT_CERT), and making a certificate needs the "
                       "cryptography package or the openssl command; install one of them")


def _with_cryptography():
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pluginpool"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def _with_openssl():
    with tempfile.TemporaryDirectory() as d:
        key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "3650", "-subj", "/O=pluginpool/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement,keyCertSign",
                        "-addext", "extendedKeyUsage=clientAuth,serverAuth"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
        with open(key, "rb") as f:
            key_pem = f.read()
        with open(cert, "rb") as f:
            cert_pem = f.read()
    return key_pem, cert_pem, der
