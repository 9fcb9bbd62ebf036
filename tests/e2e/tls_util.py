"""TLS helpers of the end-to-end tests: certificates made with the openssl command (self-signed,
or a CA and the certificates it signs), a TLS origin on 127.0.0.1, and a client socket to
proxyd's TLS port."""
import os
import socket
import ssl
import subprocess

from harness import TcpServer, read_head


def make_cert(directory, name, days=2, san=None):
    """Makes a self-signed ECDSA certificate for name in directory; returns (cert, key)
    paths. san: the subjectAltName text (default DNS:name)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", str(days), "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=" + (san or "DNS:" + name),
                    "-addext", "basicConstraints=critical,CA:FALSE"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60,
                   cwd=cwd)


def make_ca(directory, name):
    """A CA certificate and key (EC P-256, PEM); returns (cert, key) paths."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def issue(directory, ca, name, san_name, start="-1d", end="+30d"):
    """A server certificate for san_name signed by ca, valid from start to end (openssl ca
    dates: YYYYMMDDHHMMSSZ, or the offsets -1d/+30d made into dates here); returns (cert,
    key) paths."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)

    def date(s):
        if s[0] in "+-":
            days = int(s[:-1])
            return (now + datetime.timedelta(days=days)).strftime("%Y%m%d%H%M%SZ")
        return s
    work = os.path.join(directory, name + ".ca")
    os.makedirs(work)
    open(os.path.join(work, "index.txt"), "w").close()
    with open(os.path.join(work, "serial"), "w") as f:
        f.write("%02X\n" % (abs(hash(name)) % 200 + 16))
    with open(os.path.join(work, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndir = %s\ndatabase = $dir/index.txt\n"
                "new_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\n"
                "policy = p\nunique_subject = no\ncopy_extensions = copy\n"
                "[p]\ncommonName = supplied\n" % work)
    key, csr = os.path.join(directory, name + ".key"), os.path.join(work, "req.csr")
    cert = os.path.join(directory, name + ".crt")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + san_name,
            "-addext", "subjectAltName=DNS:" + san_name,
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth")
    openssl("ca", "-batch", "-config", os.path.join(work, "ca.cnf"), "-cert", ca[0],
            "-keyfile", ca[1], "-in", csr, "-out", cert, "-notext",
            "-startdate", date(start), "-enddate", date(end))
    return cert, key


class TlsOrigin(TcpServer):
    """An HTTPS origin on 127.0.0.1: answers every request on a connection with 200 and
    the body b"secure:" + the request target. The server names clients asked for (as the
    origin saw them, None for none) are kept in .names. A subclass changes what a request is
    answered with (_answer), or what is said over a connection once its handshake is done
    (_converse)."""

    def __init__(self, cert, key):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.names = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name) and None

    def _serve(self, raw):
        raw.settimeout(60)
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as s:
                self._converse(s)
        except (OSError, ssl.SSLError):
            pass

    def _converse(self, s):
        """HTTP/1.1 on s: each request head read is answered (_answer) until the client ends
        the connection or _answer says to end it."""
        buf = b""
        while True:
            head, buf = read_head(s, buf)
            if head is None or not self._answer(s, head.split(b" ")[1]):
                return

    def _answer(self, s, target):
        """Answers one request for target on s; False when the connection is to end."""
        body = b"secure:" + target
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return True


def client_hello(name):
    """The ClientHello bytes Python's TLS client sends for server name `name`."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_connect(port, cafile, timeout=60, server_hostname="127.0.0.1"):
    """A TLS client socket to proxyd's TLS port on 127.0.0.1, verifying it against cafile."""
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname=server_hostname)
