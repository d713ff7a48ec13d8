#!/usr/bin/env python3
"""Posts plugin-built usage events to a sidecar's POST /v1/ingest/batch at a steady rate: EVENTS per post,
RATE events per second, for SECONDS, on one keep-alive connection (bench/delivery/recover.sh). Bodies as
bench/pipeline/post_batches.py builds them (unique idempotencyKey per event). Prints the events posted.

usage: post_paced.py SIDECAR_PORT RATE SECONDS [EVENTS] [SEED]
"""
import http.client
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pipeline"))
from post_batches import event  # noqa: E402


def main():
    port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    events = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 7)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    interval = events / rate
    start = time.monotonic()
    posted = 0
    while time.monotonic() - start < seconds:
        body = '{"events":[' + ",".join(event(rng) for _ in range(events)) + "]}"
        conn.request("POST", "/v1/ingest/batch", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = r.read()
        if r.status != 202 or json.loads(answer).get("accepted") != events:
            sys.exit("unexpected answer %d: %s" % (r.status, answer[:300]))
        posted += events
        ahead = start + posted / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(posted)


if __name__ == "__main__":
    main()
