#!/usr/bin/python3
"""publish.py ENDPOINT: a tiny ingest partner for the dashboard test.

Reads one JSON request a line on stdin, {"id": BATCH_ID, "events": [...]},
sends it to ENDPOINT on a ZeroMQ DEALER as [batch-id, NDJSON payload] and
prints one JSON line: {"id", "t0" (wall-clock ms just before the send),
"t1" (when the ack arrived), "reply" (the gateway's JSON ack)} or
{"id", "t0", "error"}.
"""
import json
import sys
import time

import zmq


def main():
    if len(sys.argv) != 2:
        print("usage: publish.py ENDPOINT", file=sys.stderr)
        return 2
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        bid = req["id"].encode()
        payload = "\n".join(json.dumps(e) for e in req["events"]).encode() + b"\n"
        t0 = time.time() * 1000.0
        sock.send_multipart([bid, payload])
        out = {"id": req["id"], "t0": t0}
        deadline = time.monotonic() + 10.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000)):
                out["error"] = "no ack in 10 s"
                break
            frames = sock.recv_multipart()
            if frames and frames[0] == bid:
                out["t1"] = time.time() * 1000.0
                try:
                    out["reply"] = json.loads(frames[-1].decode())
                except ValueError:
                    out["error"] = "ack is not JSON: %r" % frames[-1][:200]
                break
        print(json.dumps(out), flush=True)
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
