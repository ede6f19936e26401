#!/usr/bin/python3
"""e2e_ws_batch: several queued messages go out in one write, as separate,
complete WebSocket text frames, in order.

The server is bench_fanout's `serve` mode (as in e2e_ws.py); "burst N PAD"
stores N alerts in one commit and then publishes them, so they are queued
for a client all at once. A raw-socket client (it offers no extension, so
its messages are batched) does not read while bursts of alerts (small,
larger than a whole batch, small) and cell updates are published, then
reads every frame and checks each alert and cell: one frame, FIN set, text
opcode, no RSV bits, not masked, its payload one JSON message, alerts in seq order without gap or
duplicate, every cell once. /metrics shows how many writes that took.
python3-websockets clients (which offer permessage-deflate unless told
compression=None) check the same against a server with and without
--deflate: with deflate negotiated, one message a write (no batching); and
over TLS.
"""
import asyncio
import base64
import json
import os
import signal
import socket
import struct
import sys
import time

import websockets

from ws_harness import Server, check, eq, finish, missing, run, tls_server  # noqa: E402


def counters(s, ctx=None):
    m = s.metrics(ctx)
    return (m.get("rv_ws_alerts_sent_total", -1), m.get("rv_ws_cells_sent_total", -1),
            m.get("rv_ws_message_writes_total", -1))


def masked(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A WebSocket client on a plain socket that sees every frame as sent."""

    def __init__(self, port, rcvbuf=0, mss=0):
        if rcvbuf or mss:  # a slow reader: set before connecting, so the window is small
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if mss:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
            self.sock.settimeout(10)
            self.sock.connect(("127.0.0.1", port))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: rv.v1\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"no upgrade: {head[:80]!r}")
        self.bad = []  # what is wrong with the frames seen

    def send_json(self, obj):
        self.sock.sendall(masked(json.dumps(obj).encode()))

    def frame(self, deadline):
        """The next frame: (first byte, payload)."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n, h = b1 & 0x7f, 2
                if n == 126 and len(self.buf) >= 4:
                    n, h = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, h = struct.unpack("!Q", self.buf[2:10])[0], 10
                if ((b1 & 0x7f) < 126 or h > 2) and len(self.buf) >= h + n:
                    payload, self.buf = self.buf[h:h + n], self.buf[h + n:]
                    if b1 & 0x80:
                        self.bad.append(f"masked frame {b0:#x} len {n}")
                    return b0, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def message(self, deadline):
        """The next message: (JSON, frames it came in). A text frame with
        FIN, or a text frame and continuations up to one with FIN."""
        b0, p = self.frame(deadline)
        nframes = 1
        if b0 & 0x70 or b0 & 0x0f != 1:
            self.bad.append(f"first frame {b0:#x}")
        while not b0 & 0x80:
            b0, more = self.frame(deadline)
            nframes += 1
            if b0 & 0x7f:
                self.bad.append(f"continuation frame {b0:#x}")
            p += more
        try:
            return json.loads(p.decode("utf-8")), nframes
        except (UnicodeDecodeError, ValueError) as e:
            self.bad.append(f"payload {p[:60]!r}: {e}")
            return {}, nframes

    def close(self):
        self.sock.close()


def t_raw(deflate):
    """Bursts queued for a raw client that is not reading, then read."""
    name = "deflate" if deflate else "plain"
    s = Server("raw-" + name, *(["--deflate"] if deflate else []))
    try:
        c = RawClient(s.port)
        c.send_json({"type": "subscribe"})
        snap, _ = c.message(time.monotonic() + 10)  # in fragments (a shared body)
        eq(snap.get("type"), "snapshot", f"raw {name}: snapshot first")
        a0, c0, w0 = counters(s)
        # not reading now: 300 alerts of ~430 bytes (more than one batch),
        # 2 larger than a whole batch, 50 more; each burst is in the store
        # before it is announced, so the server has all of it at once
        s.cmd("burst 300 200")
        s.cmd("burst 2 70000")
        s.cmd("burst 50 200")
        time.sleep(0.3)
        seqs, other, split = [], [], 0
        deadline = time.monotonic() + 30
        while len(seqs) < 352:
            m, nframes = c.message(deadline)
            split += nframes > 1
            if m.get("type") == "alert":
                seqs.append(m["seq"])
            else:
                other.append(m)
        eq(c.bad, [], f"raw {name}: every frame a complete text frame with one JSON message")
        eq(split, 0, f"raw {name}: alerts in one frame each")
        eq(seqs, list(range(1, 353)), f"raw {name}: alerts in order, no gap, no duplicate")
        eq(other, [], f"raw {name}: nothing else")
        a1, c1, w1 = counters(s)
        eq(a1 - a0, 352, f"raw {name}: alerts counted")
        # several messages a write (a raw client offers no extension)
        check(0 < w1 - w0 <= 40, f"raw {name}: 352 alerts in {w1 - w0:.0f} writes")
        # 200 distinct cells while not reading (how many per write depends on
        # how the updates arrive), then every one once, in one frame each
        s.cmd("cells 200")
        time.sleep(0.3)
        cells = set()
        while len(cells) < 200:
            m, nframes = c.message(deadline)
            split += nframes > 1
            key = (m.get("country"), m.get("violation"))
            check(m.get("type") == "cell" and key not in cells,
                  f"raw {name}: a cell once each, got {m.get('type')} {key}")
            cells.add(key)
        eq(c.bad, [], f"raw {name}: cells: complete text frames with one JSON message")
        eq(split, 0, f"raw {name}: cells in one frame each")
        eq(counters(s)[1] - c1, 200, f"raw {name}: cells counted")
        # what comes next is still framed right
        s.cmd("burst 3 10")
        got = [c.message(time.monotonic() + 10)[0].get("seq") for _ in range(3)]
        eq(got, [353, 354, 355], f"raw {name}: live after the bursts")
        eq(c.bad, [], f"raw {name}: still clean frames")
        c.close()
    finally:
        s.close()


async def t_websockets(deflate):
    """python3-websockets clients, one offering permessage-deflate, one not."""
    name = "deflate" if deflate else "plain"
    s = Server("py-" + name, *(["--deflate"] if deflate else []))
    try:
        for offer in (True, False):
            kw = {} if offer else {"compression": None}
            w = await websockets.connect(f"ws://127.0.0.1:{s.port}/ws", subprotocols=["rv.v1"],
                                         open_timeout=5, close_timeout=2, max_size=1 << 20,
                                         **kw)
            negotiated = [e.name for e in w.extensions]
            what = f"websockets {name} server, client offers deflate {offer}"
            eq(negotiated, ["permessage-deflate"] if deflate and offer else [],
               f"{what}: extensions")
            await w.send(json.dumps({"type": "subscribe", "cells": False}))
            eq(json.loads(await asyncio.wait_for(w.recv(), 10))["type"], "snapshot",
               f"{what}: snapshot")
            a0, _, w0 = counters(s)
            # queued while the client's reader is busy elsewhere
            for _ in range(3):
                s.cmd("burst 100 300")
            await asyncio.sleep(0.3)
            seqs, texts = [], True
            deadline = time.monotonic() + 30
            while len(seqs) < 300:
                raw = await asyncio.wait_for(w.recv(), max(0.1, deadline - time.monotonic()))
                texts = texts and isinstance(raw, str)
                m = json.loads(raw)
                if m["type"] == "alert":
                    seqs.append(m["seq"])
            check(texts, f"{what}: text messages")
            first = seqs[0] if seqs else 0
            eq(seqs, list(range(first, first + 300)), f"{what}: 300 alerts in order")
            a1, _, w1 = counters(s)
            eq(a1 - a0, 300, f"{what}: counted")
            if deflate and offer:
                eq(w1 - w0, 300, f"{what}: one message a write")
            else:
                check(0 < w1 - w0 <= 40, f"{what}: 300 messages in {w1 - w0:.0f} writes")
            await w.close()
    finally:
        s.close()


async def t_tls():
    """Batches over TLS: lws hands them to OpenSSL whole."""
    s, ctx, _, _ = tls_server("tls")
    try:
        w = await websockets.connect(f"wss://127.0.0.1:{s.port}/ws", subprotocols=["rv.v1"],
                                     ssl=ctx, open_timeout=5, close_timeout=2,
                                     compression=None, max_size=1 << 20)
        await w.send(json.dumps({"type": "subscribe", "cells": False}))
        eq(json.loads(await asyncio.wait_for(w.recv(), 10))["type"], "snapshot", "tls: snapshot")
        a0, _, w0 = counters(s, ctx)
        s.cmd("burst 300 200")
        s.cmd("burst 1 70000")
        s.cmd("burst 100 200")
        await asyncio.sleep(0.3)
        seqs = []
        deadline = time.monotonic() + 30
        while len(seqs) < 401:
            m = json.loads(await asyncio.wait_for(w.recv(),
                                                  max(0.1, deadline - time.monotonic())))
            if m["type"] == "alert":
                seqs.append(m["seq"])
        eq(seqs, list(range(1, 402)), "tls: 401 alerts in order")
        a1, _, w1 = counters(s, ctx)
        eq(a1 - a0, 401, "tls: counted")
        check(0 < w1 - w0 <= 40, f"tls: 401 messages in {w1 - w0:.0f} writes")
        await w.close()
    finally:
        s.close()


def t_slow_reader():
    """A reader with a 4 KiB receive buffer and 1400-byte segments: the
    server's writes are often partial. A burst of 2000 alerts (many batches,
    with a message held over at each batch boundary) must all arrive, in
    order, without the connection being closed (one lws_write per writable
    callback: a second one behind a partial write used to read as a failure
    and close the connection after ~120 alerts)."""
    s = Server("slow")
    try:
        c = RawClient(s.port, rcvbuf=4096, mss=1400)
        c.send_json({"type": "subscribe"})
        snap, _ = c.message(time.monotonic() + 10)
        eq(snap.get("type"), "snapshot", "slow reader: first message")
        s.cmd("burst 2000 300")
        time.sleep(1.5)  # the server fills the small window and lws buffers the rest
        seqs = []
        deadline = time.monotonic() + 60
        while len(seqs) < 2000:
            m, _ = c.message(deadline)
            if m.get("type") == "alert":
                seqs.append(m["seq"])
        eq(seqs, list(range(seqs[0], seqs[0] + 2000)), "slow reader: 2000 alerts in seq order")
        check(not c.bad, f"slow reader: frames {c.bad[:3]}")
        c.close()
    finally:
        s.close()


def main():
    signal.alarm(240)
    if missing():
        return 1
    try:
        for deflate in (False, True):
            run(f"t_raw({deflate})", lambda: t_raw(deflate))
            run(f"t_websockets({deflate})", lambda: asyncio.run(t_websockets(deflate)))
        run("t_slow_reader", t_slow_reader)
        run("t_tls", lambda: asyncio.run(t_tls()))
    finally:
        code = finish("all checks passed")
    return code


if __name__ == "__main__":
    sys.exit(main())
