"""End-to-end harness: runs the real proxyd against scripted origins and a DNS stub, all on
127.0.0.1 with ephemeral ports, and cleans up by PID.

    with DnsStub(records={"allowed.test": "127.0.0.1"}) as dns, Origin() as origin, \
         Proxyd(dns=dns) as px:
        status, headers, body = px.get(f"http://allowed.test:{origin.port}/small")

Origin paths (any method):
  /small           1 KiB body
  /big?n=N         N bytes of a repeating pattern (Content-Length)
  /stream?n=N      N bytes sent from one shared 1 MiB buffer: cheap for the origin however
                   many run at once (origin.streaming counts those begun and not finished)
  /chunked?n=N     N bytes in chunks of 1000, with a trailer
  /close?n=N       N bytes, no length: ends when the origin closes (FIN with the last bytes)
  /length-close?n=N  N bytes with a length, the head and body sent apart, then the close
  /echo            echoes the request body back (Content-Length)
  /status?code=C   empty response with status C (204, 304 send no body)
  /slow?ms=M       waits M ms before answering
  /continue        answers an Expect: 100-continue with 100 first
  /ws              WebSocket upgrade (101), then echoes bytes until EOF
  /drop            closes without answering
Every request the origin receives is kept raw (head and body) in origin.requests.

Origin(requests_per_connection=1) answers one request per connection and then, like a server
whose keep-alive timeout ran out just as the next request was on its way, closes on the next
one without answering (extra_request="reset" sends a reset instead); those requests go to
origin.unanswered.
"""
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsstub  # noqa: E402  (tests/e2e/dnsstub.py)

BUILD_DIR = os.environ.get("PX_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


def sanitizer_build():
    """True when BUILD_DIR was configured with PX_SANITIZE (ASan keeps freed memory in its
    quarantine, so a process's peak memory says nothing about ours there)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return "PX_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False
PROXYD = os.environ.get("PROXYD_BIN", os.path.join(BUILD_DIR, "proxy", "proxyd"))
PROXYCTL = os.environ.get("PROXYCTL_BIN", os.path.join(BUILD_DIR, "proxyctl", "proxyctl"))
# proxyd's compiled-in default is the installed copy; the tests use the source tree's.
STATIC_DIR = os.path.join(HERE, "..", "..", "web-admin", "static")

PATTERN = bytes(range(256))


def pattern(n):
    return (PATTERN * (n // 256 + 1))[:n]


STREAM_CHUNK = memoryview(pattern(1 << 20))


class DnsStub(dnsstub.DnsStub):
    """dnsstub.DnsStub as a context manager; a record may be one address or a list."""

    def __init__(self, records, **kw):
        super().__init__({k: [v] if isinstance(v, str) else list(v) for k, v in records.items()},
                         **kw)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_head(sock, buf=b""):
    """Reads until CRLFCRLF. Returns (head, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def parse_headers(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return first, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def read_exact(sock, n, buf):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("eof after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf[:n], buf[n:]


def read_chunked(sock, buf):
    """Reads a chunked body; returns (raw, decoded, rest)."""
    raw = b""
    decoded = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("eof in chunk size")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        raw += line + b"\r\n"
        size = int(line.split(b";")[0], 16)
        if size == 0:
            while True:
                while b"\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise EOFError("eof in trailers")
                    buf += chunk
                line, buf = buf.split(b"\r\n", 1)
                raw += line + b"\r\n"
                if line == b"":
                    return raw, decoded, buf
        data, buf = read_exact(sock, size + 2, buf)
        raw += data
        decoded += data[:-2]


class TcpServer:
    """A TCP server on address (127.0.0.1 unless given) with a thread for each connection it
    accepts, which a subclass's _serve(sock) handles; .accepted counts them (under .lock).
    Serves from __enter__ until close() or __exit__."""

    def __init__(self, address="127.0.0.1", backlog=64):
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        raise NotImplementedError


class Origin(TcpServer):
    """A scripted HTTP/1.1 origin on 127.0.0.1 (threaded, keep-alive)."""

    def __init__(self, address="127.0.0.1", requests_per_connection=None, extra_request="close"):
        super().__init__(address, backlog=256)
        self.requests = []  # (head bytes, body bytes)
        self.unanswered = []  # heads of requests closed on (requests_per_connection)
        self.requests_per_connection = requests_per_connection
        self.extra_request = extra_request
        self.streaming = 0  # /stream bodies begun and not finished
        self.streamed = 0   # /stream bodies finished or broken off

    def _serve(self, c):
        buf = b""
        served = 0
        try:
            c.settimeout(30)
            while True:
                head, buf = read_head(c, buf)
                if head is None:
                    return
                if self.requests_per_connection is not None and served >= self.requests_per_connection:
                    with self.lock:
                        self.unanswered.append(head)
                    if self.extra_request == "reset":
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                served += 1
                first, headers = parse_headers(head)
                method, target, version = first.split(" ", 2)
                body = b""
                te = header(headers, "Transfer-Encoding")
                cl = header(headers, "Content-Length")
                if header(headers, "Expect") and target.startswith("/continue"):
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if te and "chunked" in te.lower():
                    raw, body, buf = read_chunked(c, buf)
                elif cl:
                    body, buf = read_exact(c, int(cl), buf)
                with self.lock:
                    self.requests.append((head, body))
                if not self._answer(c, method, target, headers, body, version):
                    return
        except (OSError, EOFError, ValueError):
            pass
        finally:
            c.close()

    def _answer(self, c, method, target, headers, body, version="HTTP/1.1"):
        path, _, query = target.partition("?")
        args = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        n = int(args.get("n", "1024"))
        send_body = method != "HEAD"
        if path == "/small":
            data = b"x" * 1024
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n"
                      + (data if send_body else b""))
        elif path == "/big":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            if send_body:
                c.sendall(pattern(n))
        elif path == "/stream":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            # A reader that stops leaves this thread blocked in sendall (GIL released).
            c.settimeout(300)
            with self.lock:
                self.streaming += 1
            try:
                left = n if send_body else 0
                while left > 0:
                    k = min(left, len(STREAM_CHUNK))
                    c.sendall(STREAM_CHUNK[:k])
                    left -= k
            finally:
                with self.lock:
                    self.streaming -= 1
                    self.streamed += 1
        elif path == "/chunked" and version == "HTTP/1.0":
            # A 1.0 request must not get chunks: the body ends when the connection does.
            c.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + pattern(n))
            return False
        elif path == "/chunked":
            out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"]
            data = pattern(n)
            for i in range(0, len(data), 1000):
                part = data[i:i + 1000]
                out.append(b"%x\r\n" % len(part) + part + b"\r\n")
            out.append(b"0\r\nX-Sum: %d\r\n\r\n" % len(data))
            c.sendall(b"".join(out))
        elif path == "/close":
            # Corked, the last bytes and the FIN leave in one segment, as they often do.
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + pattern(n))
            c.shutdown(socket.SHUT_WR)
            return False
        elif path == "/length-close":
            # An HTTP/1.0 server's way: the head, then the body, then the close.
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            c.sendall(pattern(n))
            c.shutdown(socket.SHUT_WR)
            return False
        elif path == "/echo":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/status":
            code = int(args.get("code", "200"))
            if code in (204, 304):
                c.sendall(b"HTTP/1.1 %d X\r\n\r\n" % code)
            else:
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % code)
        elif path == "/slow":
            time.sleep(int(args.get("ms", "1000")) / 1000)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        elif path == "/continue":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/ws":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
            while True:
                data = c.recv(65536)
                if not data:
                    return False
                c.sendall(data)
        elif path == "/drop":
            return False
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return header(headers, "Connection") != "close"


class Proxyd:
    """Runs proxyd on ephemeral ports; stops it by PID."""

    def __init__(self, dns=None, extra_args=(), policy=None, workers=2, admin=True,
                 rlimit_nofile=None):
        self.tmp = tempfile.mkdtemp(prefix="pxe2e.")
        self.data_dir = os.path.join(self.tmp, "var")
        self.proxy_port = free_port()
        self.admin_port = free_port() if admin else None
        self.admin_url = "http://127.0.0.1:%d" % self.admin_port if admin else None
        self.args = [PROXYD, "--listen", "127.0.0.1:%d" % self.proxy_port,
                     "--admin", "127.0.0.1:%d" % self.admin_port if admin else "off",
                     "--data-dir", self.data_dir, "--static-dir", STATIC_DIR,
                     "--allow-loopback-targets", "--log-level", "debug"]
        if workers is not None:  # None: proxyd's default, one per CPU
            self.args += ["--workers", str(workers)]
        if dns is not None:
            # The stub is a Python thread: on a loaded machine it may answer later than
            # proxyd's default 4 s, so only a test about the DNS timeout sets a short one.
            self.args += ["--dns-server", "127.0.0.1:%d" % dns.port, "--dns-timeout", "30000"]
        if policy is not None:
            path = os.path.join(self.tmp, "test.policy")
            with open(path, "w") as f:
                f.write(policy)
            self.args += ["--policy", path]
        self.args += list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.tmp, "proxyd.log")
        # n: soft = hard, so proxyd cannot raise it; or (soft, hard)
        self.rlimit_nofile = rlimit_nofile

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        # Sanitizer builds: a finding in proxyd fails the test that caused it.
        findings = [l for l in self.log().splitlines()
                    if "runtime error:" in l or "ERROR: AddressSanitizer" in l
                    or "ERROR: LeakSanitizer" in l]
        if findings and exc[0] is None:
            raise AssertionError("sanitizer finding in proxyd (log kept in %s): %s"
                                 % (self.log_path, findings[0]))
        if exc[0] is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            sys.stderr.write("proxyd log kept in %s; tail:\n%s\n" % (self.log_path, self.log()[-3000:]))

    def start(self):
        """Starts proxyd and returns once it has finished starting: its ports listen and it
        has logged the line that ends its start-up (the admin server listens before it has
        made the first-run account, which a test filling the disk at once could prevent).
        free_port() only finds a port that was free: a test running beside this one may take
        it first. Then proxyd stops at once, and it is started again on other ports."""
        for attempt in range(3):
            logged_before = len(self.log())
            try:
                return self._start_once(logged_before)
            except RuntimeError:
                taken = [p for p in (self.proxy_port, self.admin_port) if p and re.search(
                    r"127\.0\.0\.1:%d: (cannot listen: )?Address already in use" % p,
                    self.log()[logged_before:])]
                if not taken or attempt == 2 or self.proc.poll() is None:
                    raise
                self._move_ports()

    def _move_ports(self):
        old = {"--listen": self.proxy_port, "--admin": self.admin_port}
        self.proxy_port = free_port()
        if self.admin_port:
            self.admin_port = free_port()
            self.admin_url = "http://127.0.0.1:%d" % self.admin_port
        new = {"--listen": self.proxy_port, "--admin": self.admin_port}
        for i in range(len(self.args) - 1):
            flag = self.args[i]
            if flag in old and old[flag] and self.args[i + 1] == "127.0.0.1:%d" % old[flag]:
                self.args[i + 1] = "127.0.0.1:%d" % new[flag]

    def _start_once(self, logged_before):
        self.logf = open(self.log_path, "ab")
        preexec = None
        if self.rlimit_nofile is not None:
            import resource
            n = self.rlimit_nofile
            lim = n if isinstance(n, tuple) else (n, n)
            preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, lim)  # noqa: E731
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf,
                                     preexec_fn=preexec)
        deadline = time.monotonic() + 60
        ports = [self.proxy_port] + ([self.admin_port] if self.admin_port else [])
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("proxyd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if (all(self._listening(p) for p in ports)
                    and re.search(r"proxyd \S+: \d+ workers", self.log()[logged_before:])):
                return
            time.sleep(0.05)
        raise RuntimeError("proxyd did not finish starting:\n" + self.log())

    @staticmethod
    def _listening(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        return self.proc.returncode if self.proc else None

    @property
    def pid(self):
        return self.proc.pid

    def cpu_seconds(self):
        """User plus system CPU time proxyd has used so far (from /proc/PID/stat)."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def token(self):
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            return f.read().strip()

    @property
    def first_password_path(self):
        return os.path.join(self.data_dir, "admin.password")

    @property
    def first_password(self):
        """The first-run admin password, from the file proxyd wrote it to (not its log). The
        admin server listens before it creates the account; the log line says it is there."""
        if not wait_for(lambda: "first run:" in self.log(), timeout=60):
            raise AssertionError("no first-run line in proxyd's log:\n" + self.log()[-2000:])
        with open(self.first_password_path) as f:
            return f.read().strip()

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "proxyd.db")

    def db_rows(self, sql, args=()):
        """The rows of one query on the SQLite database, read-only beside the running proxyd."""
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def api(self, method, path, body=None, token=None):
        """Calls the admin API with the bearer token; returns the decoded JSON answer."""
        import json
        import urllib.request
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (token or self.token))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def connect(self, timeout=60):
        s = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def request(self, raw, timeout=60):
        """Sends raw bytes on a new connection; returns (status, headers, body) of one response."""
        with self.connect(timeout) as s:
            s.sendall(raw)
            return read_response(s)[:3]

    def get(self, url, headers=(), method="GET", body=None, timeout=60):
        host = re.match(r"https?://([^/]+)", url).group(1)
        lines = ["%s %s HTTP/1.1" % (method, url), "Host: " + host]
        lines += list(headers)
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        return self.request(raw, timeout)


def read_response(sock, buf=b"", head_request=False):
    """Reads one response; returns (status, headers, body, rest)."""
    head, buf = read_head(sock, buf)
    if head is None:
        raise EOFError("connection closed before a response")
    first, headers = parse_headers(head)
    status = int(first.split(" ")[1])
    te = header(headers, "Transfer-Encoding")
    cl = header(headers, "Content-Length")
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", buf
    if te and "chunked" in te.lower():
        raw, body, buf = read_chunked(sock, buf)
        return status, headers, body, buf
    if cl is not None:
        body, buf = read_exact(sock, int(cl), buf)
        return status, headers, body, buf
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, buf, b""
        buf += chunk


def unread_by_peer(sock):
    """Bytes sent on sock, a TCP/IPv4 connection within this machine, that the other end has
    not read yet (its receive queue in /proc/net/tcp), or None when that end is not found.
    0 tells that the peer has read everything sent so far, whether or not it had accepted the
    connection when the bytes came."""
    def hexaddr(addr):
        ip, port = addr[:2]
        return "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(ip))[0], port)
    mine, theirs = hexaddr(sock.getsockname()), hexaddr(sock.getpeername())
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == theirs and fields[2] == mine:
                return int(fields[4].split(":")[1], 16)
    return None


def in_netns(ns, *cmd):
    """The command line that runs cmd in network namespace ns (made by `ip netns add`).
    nsenter joins only the network namespace; `ip netns exec` also remounts /sys, which a
    chroot (such as a fresh-machine check's) refuses. The command is exec'd: a Popen of this
    line has the command's own PID."""
    return ["nsenter", "--net=/run/netns/" + ns] + list(cmd)


def wait_for(predicate, timeout=60.0, interval=0.05):
    """Polls predicate until it is true or timeout passes; returns its last value. The
    timeout is a hang guard, not a deadline: a loaded machine (sanitizers, other suites)
    may take many times longer than an idle one, and a verdict must not depend on that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def closed_by_peer(s, timeout=60):
    """Whether s saw an end of stream or a reset within timeout seconds (a byte that arrives
    instead is False). A half-close the proxy passes on from the origin counts too: a test
    that means proxyd closed the connection checks its access-log row as well."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
