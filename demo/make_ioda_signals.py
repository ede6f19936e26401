#!/usr/bin/python3
"""Writes demo/ioda/signals_raw_demo.json: a HAND-MADE file in the IODA v2
/signals/raw shape documented in ../shared/data/feeds/SOURCES.md (no real
IODA capture exists). Invented values, deterministic (no randomness):
six countries, BGP visible prefixes every 300 s for eight days, a daily
wave of +-3 %, and one shutdown: SD drops to 10 % of its baseline for two
hours (24 steps) ending 20 minutes before the end of the file. Two hours,
so that whatever the minute the demo starts at, at least one whole
aggregator bin of the default 1 h is inside the drop and already closed
(the watermark lags 10 min): the alert shows at once.
Usage: make_ioda_signals.py > ioda/signals_raw_demo.json"""
import json
import math
import sys

FROM = 1717200000          # 2024-06-01T00:00:00Z
STEP = 300
N = 8 * 86400 // STEP      # eight days: more than the aggregator's default warmup (168 h)
BASE = {"IR": 3100, "MM": 1250, "SD": 420, "ET": 380, "PK": 2900, "VE": 1650}
NAMES = {"IR": "Iran", "MM": "Myanmar", "SD": "Sudan", "ET": "Ethiopia",
         "PK": "Pakistan", "VE": "Venezuela"}
DROP_CC, DROP_LEN, DROP_END_GAP = "SD", 24, 4

series = []
for k, (cc, base) in enumerate(BASE.items()):
    vals = []
    for i in range(N):
        day = math.sin(2 * math.pi * (i * STEP % 86400) / 86400 + k)
        ripple = ((i * 7919 + k * 104729) % 13 - 6) / 600.0
        v = base * (1 + 0.03 * day + ripple)
        if cc == DROP_CC and N - DROP_END_GAP - DROP_LEN <= i < N - DROP_END_GAP:
            v = base * 0.10
        vals.append(round(v))
    series.append({"entityType": "country", "entityCode": cc, "entityName": NAMES[cc],
                   "entityFqid": "geo.provider.demo." + cc, "datasource": "bgp",
                   "from": FROM, "until": FROM + N * STEP, "step": STEP, "nativeStep": STEP,
                   "values": vals})
doc = {"type": "signals",
       "metadata": {"requestTime": "2024-06-09T00:00:00+00:00",
                    "responseTime": "2024-06-09T00:00:01+00:00"},
       "requestParameters": {"entityType": "country", "entityCode": ",".join(BASE),
                             "datasource": "bgp", "from": str(FROM),
                             "until": str(FROM + N * STEP), "maxPoints": None},
       "error": None, "perf": None, "data": [series],
       "copyright": "Hand-made rightsview demo file in the documented IODA v2 shape; "
                    "invented values, not IODA data."}
json.dump(doc, sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
