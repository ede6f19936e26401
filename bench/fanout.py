#!/usr/bin/python3
"""fanout.py: the ws-server fan-out benchmark (bench/README.md has results).

For each client count, three servers get the same load client (bench_fanout
load: C raw WebSocket connections in one epoll loop, a separate process):
  rv    bench_fanout serve: the real ws-server, alerts stored durably in
        LMDB (no fsync) then published on inproc ZeroMQ like the aggregator
  raw   bench_fanout rawlws: a minimal lws broadcast server, no protocol logic,
        one message per write (the lws minimal-example ring pattern)
  rawb  bench_fanout rawlws --batch: the same, with every pending message
        that fits in 64 KiB sent in one raw write (what rv does)
  node  bench/ws_node.cjs: Node with npm `ws` (installed here into a temp dir)
Measured: server memory per idle connection (RSS delta / C), latency from
publish to client receipt for alerts sent one at a time (p50/p99), alert
deliveries/s for one burst of --deliveries / C alerts (and the CPU the server
and the load client used meanwhile: 1.0 = a whole core; the server's CPU per
delivery is the least noisy figure on a shared machine), and for rv cell
deliveries/s (one update to each of the 3486 country x violation cells;
coalesced). Then wrk
on /api/v1/overview, and how many idle connections rv holds at --hold.

usage: bench/fanout.py [--build DIR] [--clients 100,1000,5000] [--hold 20000]
                       [--kinds rv,raw,rawb,node] [--repeat 3] [--rv0 OTHER_BUILD_DIR]
"""
import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RV0_BUILD = None


class Proc:
    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1, env=env)

    def line(self, timeout=120):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("no answer from " + self.p.args[0])
        return self.p.stdout.readline().strip()

    def cmd(self, c, timeout=120):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self.line(timeout)

    def quit(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill()
            self.p.wait()


def cpu_s(pid):
    """User + system CPU seconds of PID so far (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def start_server(kind, build, tmp, clients, node_mod):
    if kind in ("rv", "rv0"):
        if kind == "rv0":  # the same server from another build (--rv0 DIR)
            build = RV0_BUILD
        d = tempfile.mkdtemp(dir=tmp)
        # --max-unauth: the load client opens every connection before it
        # subscribes any (the default allows max_conns / 2 unsubscribed)
        s = Proc([os.path.join(build, "bench_fanout"), "serve", "--data", d, "--ring", "65536",
                  "--max-conns", str(clients + 100), "--max-unauth", str(clients + 100),
                  "--ping", "600", "--idle", "1200"])
    elif kind == "raw":
        s = Proc([os.path.join(build, "bench_fanout"), "rawlws"])
    elif kind == "rawb":
        s = Proc([os.path.join(build, "bench_fanout"), "rawlws", "--batch"])
    else:
        s = Proc(["node", os.path.join(HERE, "ws_node.cjs")],
                 env=dict(os.environ, WS_MODULE=node_mod))
    first = s.line(30)
    if not first.startswith("port "):
        raise RuntimeError(f"{kind}: {first}")
    return s, int(first.split()[1])


def run_case(kind, clients, build, tmp, node_mod, n_burst, k_lat=40, pad=200):
    s, port = start_server(kind, build, tmp, clients, node_mod)
    out = {"kind": kind, "clients": clients}
    try:
        time.sleep(0.5)
        rss0 = rss_kb(s.p.pid)
        ld = Proc([os.path.join(build, "bench_fanout"), "load", "--port", str(port), "--clients",
                   str(clients), "--snapshot", "1" if kind in ("rv", "rv0") else "0"])
        r = ld.line(180).split()
        if r[0] != "ready" or int(r[1]) != clients:
            raise RuntimeError(f"{kind} {clients}: load says {r}")
        time.sleep(1.0)
        out["bytes_per_conn"] = (rss_kb(s.p.pid) - rss0) * 1024 / clients
        # latency: alerts one at a time
        ld.cmd("mark")
        for _ in range(k_lat):  # paced so that one alert reaches everyone before the next
            s.cmd(f"burst 1 {pad}")
            time.sleep(max(0.02, clients / 40000))
        g = ld.cmd(f"wait {k_lat} 60000").split()
        out["lat_p50_us"], out["lat_p99_us"] = int(g[4]), int(g[5])
        out["lat_complete"] = int(g[1]) == clients
        # throughput: one burst; the CPU both processes used meanwhile tells
        # which one was the limit (1.0 = a whole core)
        ld.cmd("mark")
        cpu0 = (cpu_s(s.p.pid), cpu_s(ld.p.pid))
        s.cmd(f"burst {n_burst} {pad}")
        g = ld.cmd(f"wait {k_lat + n_burst} 300000", timeout=320).split()
        cpu1 = (cpu_s(s.p.pid), cpu_s(ld.p.pid))
        span = int(g[3]) / 1e9
        out["server_cpu"] = round((cpu1[0] - cpu0[0]) / span, 2) if span else 0
        out["load_cpu"] = round((cpu1[1] - cpu0[1]) / span, 2) if span else 0
        out["burst"] = n_burst
        out["deliveries"] = int(g[2]) - clients * k_lat
        out["alerts_per_s"] = out["deliveries"] / span if span else 0
        out["burst_p99_us"] = int(g[5])
        out["burst_complete"] = int(g[1]) == clients
        out["server_us"] = (cpu1[0] - cpu0[0]) * 1e6 / max(1, out["deliveries"])
        if kind in ("rv", "rv0"):
            ld.cmd("mark")
            s.cmd("cells 3486")
            g = ld.cmd("waitcells 1000 120000", timeout=130).split()
            span = int(g[2]) / 1e9
            out["cell_deliveries"] = int(g[1])
            out["cells_per_s"] = int(g[1]) / span if span else 0
        ld.quit()
    finally:
        s.quit()
    return out


def wrk_overview(build, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    s = Proc([os.path.join(build, "bench_fanout"), "serve", "--data", d])
    port = int(s.line(30).split()[1])
    try:
        for cc in ["SY", "IR", "UA", "SD", "MM", "AF", "RU", "CN", "ET", "VE"]:
            for v in ["killing", "censorship", "internet_shutdown", "arbitrary_detention"]:
                s.cmd(f"gen 200 {cc} {v}")
        r = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "--latency",
                            f"http://127.0.0.1:{port}/api/v1/overview"],
                           capture_output=True, text=True, timeout=60).stdout
        rps = [ln.split()[1] for ln in r.splitlines() if ln.startswith("Requests/sec:")]
        p99 = [ln.split()[1] for ln in r.splitlines() if ln.strip().startswith("99%")]
        p50 = [ln.split()[1] for ln in r.splitlines() if ln.strip().startswith("50%")]
        return {"rps": float(rps[0]) if rps else 0, "p50": p50[0] if p50 else "?",
                "p99": p99[0] if p99 else "?"}
    finally:
        s.quit()


def hold(build, tmp, clients):
    d = tempfile.mkdtemp(dir=tmp)
    s = Proc([os.path.join(build, "bench_fanout"), "serve", "--data", d, "--max-conns",
              str(clients + 100), "--max-unauth", str(clients + 100), "--ping", "600",
              "--idle", "1200"])
    port = int(s.line(30).split()[1])
    try:
        time.sleep(0.5)
        rss0 = rss_kb(s.p.pid)
        ld = Proc([os.path.join(build, "bench_fanout"), "load", "--port", str(port), "--clients",
                   str(clients), "--snapshot", "1"])
        r = ld.line(300).split()
        time.sleep(1.0)
        held = int(r[1]) if r[0] == "ready" else 0
        per = (rss_kb(s.p.pid) - rss0) * 1024 / max(1, held)
        ld.cmd("mark")
        s.cmd("burst 1 200")
        g = ld.cmd("wait 1 60000").split()
        ld.quit()
        return {"held": held, "bytes_per_conn": round(per), "got_the_alert": int(g[2]),
                "p50_us": int(g[4]), "p99_us": int(g[5])}
    except Exception as e:
        return {"held": 0, "error": str(e)}
    finally:
        s.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("RV_BUILD_DIR",
                                                      os.path.join(HERE, "..", "build")))
    ap.add_argument("--clients", default="100,1000,5000")
    ap.add_argument("--hold", type=int, default=20000)
    ap.add_argument("--kinds", default="rv,raw,rawb,node")
    ap.add_argument("--rv0", help="build dir of another rv (before a change): adds kind rv0")
    ap.add_argument("--deliveries", type=int, default=400000,
                    help="alert deliveries per burst (alerts = this / clients, at least 40)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each case, interleaved; the best rate and latency are kept "
                         "(the machine is shared: the best run is the least disturbed)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rv-fanout-")
    node_dir = os.path.join(tmp, "node")
    node_mod = ""
    kinds = a.kinds.split(",")
    if a.rv0:
        global RV0_BUILD
        RV0_BUILD = a.rv0
        kinds.insert(1, "rv0")
    if "node" in kinds:
        os.makedirs(node_dir)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", node_dir, "ws@8"],
                       check=True, capture_output=True, timeout=300)
        node_mod = os.path.join(node_dir, "node_modules", "ws")
    rows = []
    try:
        for c in [int(x) for x in a.clients.split(",") if x]:
            n = max(40, a.deliveries // c)
            best = {}
            for _ in range(a.repeat):
                for kind in kinds:
                    r = run_case(kind, c, a.build, tmp, node_mod, n)
                    print(r, file=sys.stderr, flush=True)
                    b = best.setdefault(kind, r)
                    for k in ("alerts_per_s", "cells_per_s"):
                        if k in r and r[k] > b[k]:
                            b[k] = r[k]
                            if k == "alerts_per_s":
                                for kk in ("burst_p99_us", "server_cpu", "load_cpu"):
                                    b[kk] = r[kk]
                    for k in ("lat_p50_us", "lat_p99_us", "bytes_per_conn", "server_us"):
                        b[k] = min(b[k], r[k])
            rows += [best[k] for k in kinds]
        print("| clients | server | bytes/idle conn | latency p50 / p99 (one at a time) "
              "| alert deliveries/s (burst) | burst p99 | CPU server / load | server CPU/delivery "
              "| cell deliveries/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            cells = f"{r['cells_per_s']:,.0f} ({r['cell_deliveries']:,})" if "cells_per_s" in r else "-"
            print(f"| {r['clients']} | {r['kind']} | {r['bytes_per_conn']:,.0f} | "
                  f"{r['lat_p50_us']} / {r['lat_p99_us']} us | {r['alerts_per_s']:,.0f} "
                  f"({r['burst']} alerts) | {r['burst_p99_us'] / 1000:.1f} ms | "
                  f"{r['server_cpu']:.2f} / {r['load_cpu']:.2f} | {r['server_us']:.2f} us | "
                  f"{cells} |")
        if "rv" in kinds:
            w = wrk_overview(a.build, tmp)
            print(f"\nwrk -t2 -c32 -d5s /api/v1/overview: {w['rps']:,.0f} requests/s, "
                  f"p50 {w['p50']}, p99 {w['p99']}")
            if a.hold:
                h = hold(a.build, tmp, a.hold)
                print(f"\nhold {a.hold}: {h}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
