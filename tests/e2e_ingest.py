"""End to end on 127.0.0.1: keygen, the daemon with partners, publish with
CURVE, counts in the reply and in the store; an unlisted key and a wrong
server key fail within the timeout with exit 2; duplicates; a batch with
bad lines; SIGKILL while two publishers stream loses no acked event;
SIGTERM exits 0; plain TCP off loopback is refused."""
import json
import os
import re
import subprocess
import threading
import time

import zmq

from rvtest import (DAEMON, DATA, Daemon, TempDir, check, done, free_port, query, rvctl)

PARTNER = os.path.join(DATA, "partner_events.ndjson")
BAD = os.path.join(DATA, "partner_events_bad.ndjson")


def keygen(d, name):
    rc, out, err = rvctl("keygen", os.path.join(d, name))
    assert rc == 0, err
    with open(os.path.join(d, name + ".pub")) as f:
        return f.read().strip()


def read_key(path):
    with open(path) as f:
        return f.read().strip().encode()


def streamer(endpoint, server_pub, sec, pub, prefix, acked, stop, errors):
    """A partner publishing unique events in batches of 50, recording the ids
    of every acked batch."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.curve_serverkey = server_pub
    s.curve_secretkey = sec
    s.curve_publickey = pub
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    pending = {}
    n = 0
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    deadline = time.time() + 60
    while not stop.is_set() and time.time() < deadline:
        if len(pending) < 4:
            ids = ["%s-%d" % (prefix, n + i) for i in range(50)]
            n += 50
            lines = "\n".join(json.dumps({"id": i, "kind": "incident", "country": "SY",
                                          "violation": "killing", "time": "2025-06-01T10:00:00Z",
                                          "count": 1, "title": "x" * 200}) for i in ids)
            bid = str(n).encode()
            pending[bid] = ids
            try:
                s.send_multipart([bid, lines.encode()], zmq.NOBLOCK)
            except zmq.Again:
                pending.pop(bid)
        if poller.poll(50):
            bid, body = s.recv_multipart()
            r = json.loads(body)
            if "accepted" in r and bid in pending:
                if r["accepted"] + r["duplicates"] != 50:
                    errors.append(r)
                acked.extend(pending.pop(bid))
    s.close()
    ctx.term()


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        server_pub = keygen(d, "server")
        a_pub = keygen(d, "alpha")
        keygen(d, "beta")  # not listed
        keygen(d, "other-server")
        check(oct(os.stat(os.path.join(d, "alpha.key")).st_mode & 0o777) == "0o600",
              "keygen: secret key is mode 0600")
        check(len(a_pub) == 40, "keygen: public key is 40 Z85 characters")
        rc, _, err = rvctl("keygen", os.path.join(d, "alpha"))
        check(rc == 2 and "File exists" in err, "keygen refuses to overwrite")
        partners = os.path.join(d, "partners.txt")
        with open(partners, "w") as f:
            f.write("# name key\nalpha %s\n" % a_pub)

        # a typo in any section of the config fails before anything is made:
        # no data dir, no port bound
        for i, (conf, want) in enumerate([
                ({"ws": {"orgins": ["x"]}}, "ws.orgins: unknown key"),
                ({"aggregator": {"bin_sec": 60}}, "aggregator.bin_sec: unknown key"),
                ({"ingest": {"endpoint": "tcp://127.0.0.1:1", "max_batch": 5}},
                 "ingest.max_batch: unknown key"),
                ({"writer": {"max_event": 5}}, "writer.max_event: unknown key"),
                ({"store": {"map_size_mb": 5}}, "store.map_size_mb: unknown key"),
                ({"ingest": "tcp://127.0.0.1:%d" % free_port(), "ws": {"idle": 1}},
                 "ws.idle: unknown key"),
                ({"ws": {"tls_cert": "/nonexistent.pem"}}, "--tls-cert and --tls-key go together"),
                ({"partners": "/nonexistent/partners.txt"},
                 "partners: cannot open '/nonexistent/partners.txt'")]):
            cf = os.path.join(d, "typo%d.json" % i)
            dd = os.path.join(d, "typo%d-data" % i)
            with open(cf, "w") as f:
                json.dump(conf, f)
            p = subprocess.run([DAEMON, "--config", cf, "--data", dd, "--http", "127.0.0.1:0",
                                "--ingest", "tcp://127.0.0.1:%d" % free_port()],
                               capture_output=True, text=True, timeout=20)
            check(p.returncode == 2 and want in p.stderr and not os.path.exists(dd),
                  "config typo %r: exit 2 naming it, nothing created (rc %d, %r)"
                  % (want, p.returncode, p.stderr[-200:]))

        dm = Daemon(data, ["--partners", partners, "--server-key", os.path.join(d, "server.key")],
                    http=False).start()
        ep = dm.endpoint
        sp = os.path.join(d, "server.pub")
        rc, out, err = rvctl("publish", "--endpoint", ep, "--server-pub", sp, "--key",
                             os.path.join(d, "alpha.key"), PARTNER)
        check(rc == 0 and out.splitlines()[0] == "accepted 30 duplicates 0 rejected 0",
              "publish with CURVE: 30 accepted (%r %r)" % (out, err))
        ev = query(data, "events")["events"]
        check(len(ev) == 30 and all(e["source"] == "alpha" for e in ev),
              "store holds 30 events, source is the partner's name from its key")

        rc, out, err = rvctl("publish", "--endpoint", ep, "--server-pub", sp, "--key",
                             os.path.join(d, "alpha.key"), "--batch", "7", PARTNER)
        check(rc == 0 and out.splitlines()[0] == "accepted 0 duplicates 30 rejected 0",
              "re-publishing is safe: 30 duplicates")

        with open(os.path.join(d, "mixed.ndjson"), "w") as f:
            with open(PARTNER) as p:
                good = p.read().splitlines()
            with open(BAD) as b:
                bad = b.read().splitlines()
            f.write("\n".join([good[0], bad[0], bad[1], good[1], bad[2]]) + "\n")
        # a fresh good line so that something new is accepted next to the bad ones
        with open(os.path.join(d, "mixed.ndjson"), "a") as f:
            f.write(json.dumps({"id": "new-1", "kind": "news", "country": "IR",
                                "violation": "censorship", "time": "2025-06-01T00:00:00Z"}) + "\n")
        rc, out, err = rvctl("publish", "--endpoint", ep, "--server-pub", sp, "--key",
                             os.path.join(d, "alpha.key"), os.path.join(d, "mixed.ndjson"))
        lines = out.splitlines()
        check(rc == 1, "a batch with bad lines exits 1")
        check(lines[0] == "accepted 1 duplicates 2 rejected 3", "mixed batch counts: " + lines[0])
        check(lines[1].startswith("line 2: json: syntax error"), "line 2 rejected as bad JSON")
        check(lines[2] == "line 3: country: 'XX' is not an ISO 3166-1 alpha-2 code",
              "line 3 rejected for its country")
        check(lines[3] == "line 5: time: missing", "line 5 rejected for its missing time")

        t0 = time.time()
        rc, out, err = rvctl("publish", "--endpoint", ep, "--server-pub", sp, "--key",
                             os.path.join(d, "beta.key"), "--timeout", "3", PARTNER)
        check(rc == 2 and "authentication failed" in err and time.time() - t0 < 10,
              "an unlisted key is refused: exit 2 within the timeout")
        rc, out, err = rvctl("publish", "--endpoint", ep, "--server-pub",
                             os.path.join(d, "other-server.pub"), "--key",
                             os.path.join(d, "alpha.key"), "--timeout", "3", PARTNER)
        check(rc == 2 and time.time() - t0 < 20, "a wrong server key fails with exit 2")
        rc, out, err = rvctl("publish", "--endpoint", "tcp://127.0.0.1:%d" % free_port(),
                             "--timeout", "2", PARTNER)
        check(rc == 2, "nobody listening: exit 2")
        rc, out, err = rvctl("publish", "--bogus")
        check(rc == 2, "bad usage: exit 2")
        # rvctl query: JSON while the daemon runs, exit 2 with a reason otherwise
        ov = query(data, "overview", "--res", "1d")
        check(ov["last_seq"] >= 30 and any(c["country"] == "CD" and c["violation"] == "displacement"
                                           and c["count"] == 40000 for c in ov["cells"]),
              "query overview: the 1d rollup of the partner sample (CD displacement 40000)")
        se = query(data, "series", "--country", "CD", "--violation", "displacement", "--res", "1d")
        check(sum(b["count"] for b in se["bins"]) == 40000, "query series: counts per bin")
        rc, out, err = rvctl("query", "--data", os.path.join(d, "nowhere"), "overview")
        check(rc == 2 and "no store at" in err, "query on a missing data dir: exit 2 (%s)" % err.strip())
        rc, out, err = rvctl("query", "--data", data, "events", "--country", "XX")
        check(rc == 2 and "'XX' is not an ISO 3166-1 alpha-2 code" in err, "query --country XX: exit 2")
        rc, out, err = rvctl("query", "--data", data, "series")
        check(rc == 2 and "needs --country and --violation" in err, "query series without filters: exit 2")
        rc, out, err = rvctl("query", "--data", data, "everything")
        check(rc == 2, "query of an unknown view: exit 2")
        rc, out, err = rvctl("query", "--data", data, "events", "--from", "9" * 20)
        check(rc == 2 and "is not RFC 3339 or epoch ms" in err, "query --from out of range: exit 2")
        rc, out, err = rvctl("query", "--help")
        check(rc == 0 and out.startswith("usage: rvctl query") and "--since SEQ" in out,
              "query --help: its own usage, exit 0")
        rc, out, err = rvctl("publish", "--help")
        check(rc == 0 and out.startswith("usage: rvctl publish"), "publish --help: exit 0")

        # a raw partner: protocol errors get a reply, the gateway keeps serving
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.curve_serverkey = server_pub.encode()
        s.curve_secretkey = read_key(os.path.join(d, "alpha.key"))
        s.curve_publickey = a_pub.encode()
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 5000)
        s.connect(ep)
        s.send_multipart([b"only-one-frame"])
        r = json.loads(s.recv_multipart()[-1])
        check(r.get("error", "").startswith("protocol: expected 2 frames"),
              "one frame gets a protocol error")
        s.send_multipart([b"b1", b"\xff\xfe not utf8\n"])
        bid, body = s.recv_multipart()
        r = json.loads(body)
        check(bid == b"b1" and r["rejected"] == 1 and r["errors"][0]["field"] == "utf-8",
              "broken UTF-8 is rejected with its field")
        s.send_multipart([b"b2", b'{"id":"forged","source":"beta","kind":"news","country":"FR",'
                          b'"violation":"censorship","time":0}'])
        r = json.loads(s.recv_multipart()[1])
        check(r["accepted"] == 1, "a payload 'source' field is dropped, the event kept")
        s.close()
        ctx.term()
        ev = query(data, "events", "--source", "beta")["events"]
        check(ev == [], "nobody can publish as somebody else")

        # SIGKILL while two publishers stream
        acked_a, acked_b, errors = [], [], []
        stop = threading.Event()
        sec = read_key(os.path.join(d, "alpha.key"))
        th = [threading.Thread(target=streamer, args=(ep, server_pub.encode(), sec, a_pub.encode(),
                                                      pfx, acked, stop, errors))
              for pfx, acked in (("kA", acked_a), ("kB", acked_b))]
        for t in th:
            t.start()
        time.sleep(1.5)
        dm.kill9()
        time.sleep(0.3)
        stop.set()
        for t in th:
            t.join(timeout=30)
        check(len(acked_a) > 0 and len(acked_b) > 0, "both publishers got acks (%d, %d)" %
              (len(acked_a), len(acked_b)))
        check(errors == [], "every ack counted its whole batch")
        log_before = os.path.getsize(dm.log)
        dm = Daemon(data, ["--partners", partners, "--server-key", os.path.join(d, "server.key")],
                    http=False)
        dm.endpoint = ep
        dm.args[dm.args.index("--ingest") + 1] = ep
        dm.start()
        # the rebuild replays the events that came in late, without logging
        # them again (they were when they came in): a count in its summary
        with open(dm.log, "rb") as f:
            first = f.read(log_before).decode("utf-8", "replace")
        deadline = time.time() + 15
        second = ""
        while time.time() < deadline and "agg rebuilt" not in second:
            time.sleep(0.1)
            with open(dm.log, "rb") as f:
                f.seek(log_before)
                second = f.read().decode("utf-8", "replace")
        m = re.search(r"agg rebuilt cursor=(\d+) .* late=(\d+)", second)
        check("late event dropped" in first and m and int(m.group(1)) > 0 and int(m.group(2)) > 0
              and "late event dropped" not in second,
              "restart: the rebuild counts the late events (%s) without a warning each"
              % (m.group(0) if m else "no rebuild line"))
        stored = {e["id"] for e in query(data, "events", "--source", "alpha")["events"]}
        missing = [i for i in acked_a + acked_b if i not in stored]
        check(missing == [], "after kill -9 and restart every acked event is stored (%d acked, "
              "%d missing)" % (len(acked_a) + len(acked_b), len(missing)))
        rc = dm.stop()
        check(rc == 0, "SIGTERM: exit 0")
        check("stopped cleanly" in dm.logtext(), "SIGTERM: commits and says so")

        # a full disk (a file size limit here): no ack, SIGTERM still exits
        # promptly, and after a restart with space everything resumes
        full = os.path.join(d, "full")
        dmf = Daemon(full, ["--log-level", "warn"])
        size_limit = 3 * 1024 * 1024

        def limit():
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_limit, resource.RLIM_INFINITY))
        dmf.logf = open(dmf.log, "ab")
        dmf.proc = subprocess.Popen(dmf.args, stdout=subprocess.PIPE, stderr=dmf.logf,
                                    preexec_fn=limit)
        dmf.proc.stdout.readline()
        big = os.path.join(d, "big.ndjson")
        with open(big, "w") as f:
            for i in range(6000):
                f.write(json.dumps({"id": "big-%d" % i, "kind": "news", "country": "FR",
                                    "violation": "censorship", "time": "2025-06-01T00:00:00Z",
                                    "title": "t" * 900}) + "\n")
        rc, out, err = rvctl("publish", "--endpoint", dmf.endpoint, "--timeout", "4", big)
        check(rc == 2, "disk full: the publisher gets no ack for what was not stored (exit 2)")
        check("write failed" in dmf.logtext() or "disk full" in dmf.logtext(),
              "disk full: the daemon says why it cannot commit")
        t0 = time.time()
        rc = dmf.stop(timeout=20)
        check(rc == 0 and time.time() - t0 < 10, "disk full: SIGTERM still exits 0 promptly")
        dmf2 = Daemon(full, ["--log-level", "warn"])
        dmf2.start()
        rc, out, err = rvctl("publish", "--endpoint", dmf2.endpoint, big)
        check(rc == 0 and out.startswith("accepted "), "space back: publishing resumes (%s)" % out.strip())
        n = len(query(full, "events", "--country", "FR")["events"])
        check(n == 6000, "space back: all 6000 events stored once (%d)" % n)
        dmf2.stop()

        # refuse plain TCP beyond loopback, and partners without a server key
        p = subprocess.run([DAEMON, "--data", data, "--ingest", "tcp://0.0.0.0:%d" % free_port(),
                            "--http", "127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and "without --partners" in p.stderr,
              "non-loopback ingest without partners refuses to start")
        p = subprocess.run([DAEMON, "--data", data, "--partners", partners, "--ingest",
                            "tcp://127.0.0.1:%d" % free_port(), "--http",
                            "127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and "needs --server-key" in p.stderr,
              "partners without a server key refuses to start")
        with open(os.path.join(d, "badpartners"), "w") as f:
            f.write("alpha notakey\n")
        p = subprocess.run([DAEMON, "--data", data, "--partners", os.path.join(d, "badpartners"),
                            "--server-key", os.path.join(d, "server.key"), "--ingest",
                            "tcp://127.0.0.1:%d" % free_port(), "--http",
                            "127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and "partners:1: 'notakey' is not a Z85 public key" in p.stderr,
              "a bad partners file names the line")
    done()


main()
