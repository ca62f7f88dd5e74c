"""Throw-away certificates for TLS to etcd (tests only), made with the
openssl CLI in a directory of the caller's: no network, valid for 2 days.

    pki = Pki(tmpdir)           # None if openssl is missing: see available()
    pki.ca                      # the CA etcd trusts and kvd verifies etcd with
    pki.server_cert, .server_key   # etcd's: SAN IP:127.0.0.1
    pki.client_cert, .client_key   # kvd's and kvctl's client certificate (signed by ca)
    pki.other_ca                # an unrelated CA (a node configured with the wrong CA)
    pki.impostor_cert, .impostor_key   # a server certificate for 127.0.0.1 signed by other_ca
    pki.client_context()        # ssl.SSLContext for the harness's own requests

Python 3 standard library only.
"""

import os
import shutil
import ssl
import subprocess

OPENSSL = shutil.which("openssl")

# Go (etcd) checks extended key usages: etcd's gateway dials etcd's own gRPC
# port with the server certificate as a client certificate, so the server
# certificate carries clientAuth too.
_EXTENSIONS = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


def available():
    return OPENSSL is not None


def _run(*args):
    p = subprocess.run([OPENSSL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stdout.decode(errors="replace")))


class Pki:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ext = self.path("ext.cnf")
        with open(self.ext, "w") as f:
            f.write(_EXTENSIONS)
        self.ca, self.ca_key = self._ca("ca")
        self.other_ca, self.other_ca_key = self._ca("other-ca")
        self.server_cert, self.server_key = self._leaf("server", "server")
        self.client_cert, self.client_key = self._leaf("client", "client")
        self.impostor_cert, self.impostor_key = self._leaf("impostor", "server", self.other_ca, self.other_ca_key)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key_args(self, name):
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.path(name + ".key")]

    def _ca(self, name):
        _run("req", "-x509", "-config", self.ext, "-extensions", "ca", *self._key_args(name), "-sha256",
             "-days", "2", "-subj", "/CN=kvd-test-" + name, "-out", self.path(name + ".pem"))
        return self.path(name + ".pem"), self.path(name + ".key")

    def _leaf(self, name, extensions, ca=None, ca_key=None):
        csr = self.path(name + ".csr")
        _run("req", "-new", "-config", self.ext, *self._key_args(name), "-subj", "/CN=kvd-test-" + name, "-out", csr)
        _run("x509", "-req", "-in", csr, "-CA", ca or self.ca, "-CAkey", ca_key or self.ca_key, "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-sha256", "-days", "2", "-extfile", self.ext,
             "-extensions", extensions, "-out", self.path(name + ".pem"))
        return self.path(name + ".pem"), self.path(name + ".key")

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


class Impostor:
    """A TLS listener on loopback that presents the impostor certificate
    (right address, wrong CA) and closes every connection after the
    handshake attempt: an endpoint a verifying client must refuse."""

    def __init__(self, pki):
        import socket
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.impostor_cert, pki.impostor_key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "https://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.handshakes += 1
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()
