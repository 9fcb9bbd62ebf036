#!/usr/bin/env python3
"""dnsstub: a tiny authoritative-looking DNS server for tests (UDP and TCP on 127.0.0.1).

Tests never ask the machine's resolver about made-up names; they point proxyd (or the dns
unit test) at this stub instead. It answers A and AAAA from a table given on the command
line, NODATA (NOERROR, no answers) for a known name without the asked type, NXDOMAIN for
every other name, and can delay, drop (never answer) or SERVFAIL chosen names.

    dnsstub.py --port 0 --record allowed.test=127.0.0.1 --record both.test=127.0.0.1,::1 \
               --record '*.many.test=127.0.0.1' --ttl 5 --ttl-of short.test=1 \
               --delay slow.test=3000 --drop never.test --servfail broken.test

Line 1 of stdout is `PORT <n>` (flushed) once both sockets listen. Every query is logged on
stderr as `query <proto> <type> <name>` before it is answered. SIGTERM or SIGINT stops it.
UDP answers larger than 512 bytes are truncated with TC set, so clients retry over TCP.

As a module: `stub = DnsStub({'a.test': '127.0.0.1'}); stub.start(); stub.port;
stub.queries['a.test']; stub.stop()` (or `with DnsStub(...) as stub:`) runs it in daemon
threads of the caller.
"""

import argparse
import collections
import ipaddress
import signal
import socket
import struct
import sys
import threading

TYPE_A = 1
TYPE_AAAA = 28
TYPE_NAMES = {TYPE_A: 'A', TYPE_AAAA: 'AAAA'}
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
UDP_MAX = 512


class MalformedQuery(Exception):
    pass


def parse_query(msg):
    """Returns (id, flags, qname lower-case without trailing dot, qtype, qclass, end of the
    question). Raises MalformedQuery for anything that is not one plain question."""
    if len(msg) < 12:
        raise MalformedQuery('short header')
    qid, flags, qdcount = struct.unpack('!HHH', msg[:6])
    if flags & 0x8000:
        raise MalformedQuery('a response, not a query')
    if qdcount != 1:
        raise MalformedQuery('qdcount %d' % qdcount)
    labels = []
    pos = 12
    while True:
        if pos >= len(msg):
            raise MalformedQuery('name runs past the end')
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0:
            raise MalformedQuery('compression in a question')
        if pos + n > len(msg):
            raise MalformedQuery('label runs past the end')
        labels.append(msg[pos:pos + n])
        pos += n
        if sum(len(x) + 1 for x in labels) > 255:
            raise MalformedQuery('name too long')
    if pos + 4 > len(msg):
        raise MalformedQuery('no type and class')
    qtype, qclass = struct.unpack('!HH', msg[pos:pos + 4])
    try:
        name = b'.'.join(labels).decode('ascii').lower()
    except UnicodeDecodeError as exc:
        raise MalformedQuery('non-ASCII name') from exc
    return qid, flags, name, qtype, qclass, pos + 4


def build_response(msg, qend, qid, flags, rcode, rtype, addrs, ttl):
    """The question is copied from the query; answers point at it with a compression pointer."""
    rd = flags & 0x0100
    hdr_flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD copied, RA
    answers = []
    for a in addrs:
        rdata = a.packed
        answers.append(struct.pack('!HHHIH', 0xC00C, rtype, 1, ttl, len(rdata)) + rdata)
    body = msg[12:qend]
    header = struct.pack('!HHHHHH', qid, hdr_flags, 1, len(answers), 0, 0)
    return header + body + b''.join(answers)


def truncate(resp, qend):
    """A UDP answer that does not fit: header with TC, the question, no answers."""
    qid, flags = struct.unpack('!HH', resp[:4])
    return struct.pack('!HHHHHH', qid, flags | 0x0200, 1, 0, 0, 0) + resp[12:qend]


class DnsStub:
    """A DNS stub serving `records` ({name: address or [addresses]}, names may start with `*.`)
    on 127.0.0.1. delays: {name: ms}; drops, servfails: sets of names; ttls: {name: s}."""

    def __init__(self, records, port=0, ttl=5, ttls=None, delays=None, drops=None,
                 servfails=None, log=None):
        self.records = {}
        for name, addrs in records.items():
            if isinstance(addrs, str):
                addrs = [addrs]
            self.records[name.lower().rstrip('.')] = [ipaddress.ip_address(a) for a in addrs]
        self.want_port = port
        self.ttl = ttl
        self.ttls = {k.lower(): v for k, v in (ttls or {}).items()}
        self.delays = {k.lower(): v for k, v in (delays or {}).items()}
        self.drops = {k.lower() for k in (drops or ())}
        self.servfails = {k.lower() for k in (servfails or ())}
        self.log = log
        self.queries = collections.Counter()  # name -> questions seen (A and AAAA both count)
        self.port = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []
        self._udp = None
        self._tcp = None

    def _lookup(self, table, name):
        if name in table:
            return table[name]
        parts = name.split('.')
        for i in range(1, len(parts)):
            wild = '*.' + '.'.join(parts[i:])
            if wild in table:
                return table[wild]
        return None

    def _has(self, names, name):
        return self._lookup({n: True for n in names}, name) is not None

    def answer(self, msg, proto):
        """Returns (delay in seconds, response bytes) or None for no answer."""
        try:
            qid, flags, name, qtype, qclass, qend = parse_query(msg)
        except MalformedQuery:
            return None
        with self._lock:
            self.queries[name] += 1
        if self.log:
            self.log.write('query %s %s %s\n' % (proto, TYPE_NAMES.get(qtype, qtype), name))
            self.log.flush()
        if self._has(self.drops, name):
            return None
        delay = (self._lookup(self.delays, name) or 0) / 1000.0
        if self._has(self.servfails, name):
            return delay, build_response(msg, qend, qid, flags, RCODE_SERVFAIL, 0, [], 0)
        addrs = self._lookup(self.records, name)
        if addrs is None or qclass != 1:
            return delay, build_response(msg, qend, qid, flags, RCODE_NXDOMAIN, 0, [], 0)
        version = {TYPE_A: 4, TYPE_AAAA: 6}.get(qtype)
        match = [a for a in addrs if a.version == version]
        ttl = self._lookup(self.ttls, name)
        ttl = self.ttl if ttl is None else ttl
        resp = build_response(msg, qend, qid, flags, RCODE_NOERROR, qtype, match, ttl)
        if proto == 'udp' and len(resp) > UDP_MAX:
            resp = truncate(resp, qend)
        return delay, resp

    def _later(self, delay, fn):
        if delay <= 0:
            fn()
            return
        t = threading.Timer(delay, fn)
        t.daemon = True
        t.start()

    def _serve_udp(self):
        while not self._stopping.is_set():
            try:
                msg, peer = self._udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            out = self.answer(msg, 'udp')
            if out is None:
                continue

            def send(resp=out[1], peer=peer):
                try:
                    self._udp.sendto(resp, peer)
                except OSError:
                    pass
            self._later(out[0], send)

    def _serve_tcp_conn(self, conn):
        lock = threading.Lock()
        conn.settimeout(10)

        def send(resp):
            with lock:
                try:
                    conn.sendall(struct.pack('!H', len(resp)) + resp)
                except OSError:
                    pass
        try:
            while not self._stopping.is_set():
                head = self._recv_exact(conn, 2)
                if head is None:
                    break
                msg = self._recv_exact(conn, struct.unpack('!H', head)[0])
                if msg is None:
                    break
                out = self.answer(msg, 'tcp')
                if out is not None:
                    self._later(out[0], lambda r=out[1]: send(r))
        except OSError:
            pass
        finally:
            # A delayed answer still pending after the client left fails silently in send().
            conn.close()

    @staticmethod
    def _recv_exact(conn, n):
        data = b''
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _serve_tcp(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            t = threading.Thread(target=self._serve_tcp_conn, args=(conn,), daemon=True)
            t.start()

    def start(self):
        """Binds UDP and TCP to the same port on 127.0.0.1 and serves in daemon threads."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(('127.0.0.1', self.want_port))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(('127.0.0.1', port))
            except OSError:
                udp.close()
                tcp.close()
                if self.want_port:
                    raise
                continue  # the ephemeral UDP port is taken for TCP: pick another
            break
        else:
            raise OSError('no port free for both UDP and TCP')
        tcp.listen(64)
        udp.settimeout(0.2)
        tcp.settimeout(0.2)
        self._udp, self._tcp, self.port = udp, tcp, port
        for fn in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)
        return self.port

    def stop(self):
        self._stopping.set()
        for t in self._threads:
            t.join(timeout=2)
        for s in (self._udp, self._tcp):
            if s:
                s.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def split_pairs(items, what, conv):
    out = {}
    for item in items or ():
        name, sep, value = item.partition('=')
        if not sep or not name:
            raise SystemExit('dnsstub: %s wants NAME=VALUE, got %r' % (what, item))
        try:
            out[name] = conv(value)
        except ValueError as exc:
            raise SystemExit('dnsstub: %s %r: %s' % (what, item, exc)) from exc
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description='DNS stub for tests (127.0.0.1, UDP and TCP)')
    ap.add_argument('--port', type=int, default=0, help='0 picks an ephemeral port')
    ap.add_argument('--record', action='append', metavar='NAME=ADDR[,ADDR...]')
    ap.add_argument('--ttl', type=int, default=5, help='TTL of answers in seconds')
    ap.add_argument('--ttl-of', action='append', metavar='NAME=SECONDS')
    ap.add_argument('--delay', action='append', metavar='NAME=MS')
    ap.add_argument('--drop', action='append', metavar='NAME', help='never answer NAME')
    ap.add_argument('--servfail', action='append', metavar='NAME')
    args = ap.parse_args(argv)

    records = split_pairs(args.record, '--record', lambda v: [a for a in v.split(',') if a])
    stub = DnsStub(records, port=args.port, ttl=args.ttl,
                   ttls=split_pairs(args.ttl_of, '--ttl-of', int),
                   delays=split_pairs(args.delay, '--delay', int),
                   drops=args.drop, servfails=args.servfail, log=sys.stderr)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    stub.start()
    sys.stdout.write('PORT %d\n' % stub.port)
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    stub.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
