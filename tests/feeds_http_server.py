#!/usr/bin/python3
"""Tiny HTTP server for tests/test_feeds.c (not a test itself).

Binds 127.0.0.1 on an OS-chosen port, prints "PORT <n>" on stdout, then
serves until killed or until its stdin closes (so it never outlives the
test):
  /events.ndjson  5 events; ETag "v1" and Last-Modified; If-None-Match "v1"
                  -> 304; gzip when asked; 403 unless User-Agent is
                  rightsview/0.1
  /redirect       302 -> /events.ndjson
  /fail           500
  /stall          headers, then nothing for 30 s
  /big            2 MB body
"""
import gzip
import http.server
import sys
import threading
import time

EVENTS = "".join(
    '{"id":"h-%d","kind":"incident","country":"SY","violation":"killing",'
    '"time":"2025-01-0%dT10:00:00Z","count":%d}\n' % (i, i, i) for i in range(1, 6)
).encode()
LASTMOD = "Wed, 01 Jan 2025 10:00:00 GMT"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except ConnectionError:
            pass  # the client gave up (max_bytes): expected

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/events.ndjson":
            if self.headers.get("User-Agent") != "rightsview/0.1":
                return self.send_body(403, b"bad user agent\n")
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            body, hdrs = EVENTS, [("ETag", '"v1"'), ("Last-Modified", LASTMOD),
                                  ("Content-Type", "application/x-ndjson")]
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                body = gzip.compress(body)
                hdrs.append(("Content-Encoding", "gzip"))
            return self.send_body(200, body, hdrs)
        if path == "/redirect":
            return self.send_body(302, b"", [("Location", "/events.ndjson")])
        if path == "/fail":
            return self.send_body(500, b"boom\n")
        if path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                self.wfile.flush()
            except ConnectionError:
                pass
            time.sleep(30)
            return
        if path == "/big":
            return self.send_body(200, b"{" * (2 * 1024 * 1024))
        return self.send_body(404, b"not found\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients abort on purpose (stop, max_bytes, timeouts)


def main():
    srv = Server(("127.0.0.1", 0), H)
    print("PORT %d" % srv.server_address[1], flush=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    sys.stdin.read()  # returns when the test closes the pipe or dies
    srv.shutdown()


if __name__ == "__main__":
    main()
