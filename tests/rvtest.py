"""Helpers for the end-to-end tests: free ports, temp dirs, starting and
stopping rightsviewd, running rvctl. Everything on 127.0.0.1, every wait
bounded."""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("RV_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
DATA = os.environ.get("RV_TEST_DATA", os.path.join(os.path.dirname(__file__), "data"))
DAEMON = os.path.join(BUILD, "rightsviewd")
RVCTL = os.path.join(BUILD, "rvctl")

failures = 0


def check(cond, what):
    global failures
    if cond:
        print("ok   " + what, flush=True)
    else:
        failures += 1
        print("FAIL " + what, flush=True)


def done():
    if failures:
        print("%d check(s) failed" % failures)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="rve2e.")

    def __enter__(self):
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


def rvctl(*args, timeout=60, stdin=None):
    p = subprocess.run([RVCTL] + list(args), capture_output=True, text=True, timeout=timeout,
                       input=stdin)
    return p.returncode, p.stdout, p.stderr


class Daemon:
    """rightsviewd on free ports; waits until its ingest line is printed."""

    def __init__(self, data, extra=(), http=True):
        self.data = data
        self.ingest_port = free_port()
        self.http_port = 0  # the OS picks it; read back from the start line
        self.endpoint = "tcp://127.0.0.1:%d" % self.ingest_port
        args = [DAEMON, "--data", data, "--ingest", self.endpoint, "--http", "127.0.0.1:0"]
        self.args = args + list(extra)
        self.proc = None
        self.log = os.path.join(data + ".log")

    def start(self, timeout=15):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.logf)
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rightsviewd exited %d; log: %s" % (self.proc.returncode, self.logtext()))
            line = self.proc.stdout.readline()
            m = re.search(rb"dashboard https?://[^:]+:(\d+)/", line)
            if m:
                self.http_port = int(m.group(1))
                self.url = "http://127.0.0.1:%d" % self.http_port
                return self
        raise RuntimeError("rightsviewd did not start: " + self.logtext())

    def logtext(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()


def query(data, *args):
    rc, out, err = rvctl("query", "--data", data, *args)
    if rc != 0:
        raise RuntimeError("rvctl query failed: " + err)
    return json.loads(out)
