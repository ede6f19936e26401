"""ws_harness: what the WebSocket end-to-end tests (e2e_ws.py,
e2e_ws_batch.py) share: the failure list and its checks, a scratch dir, and
the server under test, bench_fanout's `serve` mode (the real ws-server over
a real LMDB store, driven line by line on stdin: "alert JSON", "burst N
PAD", "quit"; it answers "ok")."""
import os
import subprocess
import tempfile
import urllib.request

BUILD = os.environ.get("RV_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "build")
HARNESS = os.path.join(BUILD, "bench_fanout")
TMP = tempfile.mkdtemp(prefix="rv-e2e-ws-")
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


def eq(got, want, what):
    return check(got == want, f"{what}: got {got!r}, want {want!r}")


class Server:
    """bench_fanout serve on a free port, its data dir under TMP. With
    expect_fail, a server that does not start keeps its first line in
    .error instead of raising."""

    def __init__(self, name, *args, expect_fail=False):
        self.data = os.path.join(TMP, name)
        self.p = subprocess.Popen([HARNESS, "serve", "--data", self.data, *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        first = self.p.stdout.readline().strip()
        self.port = None
        self.error = None
        if first.startswith("port "):
            self.port = int(first.split()[1])
        else:
            self.error = first
            self.p.wait(timeout=10)
            if not expect_fail:
                raise RuntimeError(f"server did not start: {first}")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        r = self.p.stdout.readline().strip()
        if r != "ok":
            raise RuntimeError(f"harness: {line[:60]} -> {r}")

    def metrics(self, ctx=None):
        """/metrics as {"name{labels}": value}."""
        scheme = "https" if ctx else "http"
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{self.port}/metrics", timeout=10,
                                    context=ctx) as r:
            body = r.read().decode()
        out = {}
        for ln in body.splitlines():
            if ln and not ln.startswith("#") and " " in ln:
                k, v = ln.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                FAILS.append("server did not stop within 20 s")
        return self.p.returncode

    def url(self, path, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def ws(self, path="/ws"):
        return f"ws://127.0.0.1:{self.port}{path}"


def tls_server(name, cls=None):
    """A server (of class CLS, default Server) with a fresh self-signed
    certificate (OpenSSL CLI) for 127.0.0.1, and a client context that
    trusts it: (server, context, cert path, key path)."""
    import ssl
    cert, key = os.path.join(TMP, name + "-cert.pem"), os.path.join(TMP, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    s = (cls or Server)(name, "--tls-cert", cert, "--tls-key", key)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return s, ctx, cert, key


def run(name, fn):
    """Runs one test: an exception is a failure, and the next tests run."""
    import time
    import traceback
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # a crash in one test is a failure, go on
        traceback.print_exc()
        FAILS.append(f"{name}: {e!r}")
    print(f"{name}: {time.monotonic() - t0:.1f} s", flush=True)


def missing():
    """True (and says so) when bench_fanout was not built."""
    if os.access(HARNESS, os.X_OK):
        return False
    print(f"missing {HARNESS}", flush=True)
    return True


def finish(ok_text="ok"):
    """Removes TMP; prints how many checks failed, or OK_TEXT; the exit code."""
    import shutil
    shutil.rmtree(TMP, ignore_errors=True)
    if FAILS:
        print(f"{len(FAILS)} failure(s)")
        return 1
    print(ok_text)
    return 0
