#!/usr/bin/env python3
"""Posts BATCHES bodies of EVENTS plugin-built usage events to a sidecar's POST /v1/ingest/batch, one
request at a time on one keep-alive connection (as a plugin worker's flush does), then waits until the
fake ingest has received every event and the sidecar counts them delivered. Used by callgrind.sh and
bench/delivery/run.sh. With CONNECTIONS > 1, that many poster processes (as several nginx workers) each
post their share of the bodies, one request at a time on a connection of their own.

The bodies are deterministic (seeded): the shape bench/plugin's nginx worker sends (lua/ builds it),
with a unique idempotencyKey (kong:<request id>) per event so the fake ingest sees no duplicates.

usage: post_batches.py SIDECAR_PORT FAKE_INGEST_PORT BATCHES [EVENTS] [SEED] [CONNECTIONS]
"""
import http.client
import json
import multiprocessing
import random
import sys
import time


def event(rng):
    h = "%032x" % rng.getrandbits(128)
    key = "-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))  # a Kong request id
    ms = rng.randrange(1000)
    response_bytes = rng.randrange(100, 9000)
    return (
        '{"customerId":"cust_bench","metricName":"api_calls","quantity":1,'
        '"occurredAt":"2026-11-26T12:00:00.%03dZ","idempotencyKey":"kong:%s","productType":"API",'
        '"executionStatus":"SUCCESS","endpointPath":"/v1/search/items/42","httpMethod":"GET","statusCode":200,'
        '"responseTimeMs":%d,"dataBytes":%d,"metadata":{"gateway":"kong","request_bytes":%d,"response_bytes":%d,'
        '"service":"search","route":"search-v1","cost":0.002}}'
    ) % (ms, key, rng.randrange(1, 40), response_bytes, rng.randrange(100, 900), response_bytes)


def get_json(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return body


def post_all(sc_port, bodies, events):
    conn = http.client.HTTPConnection("127.0.0.1", sc_port, timeout=120)
    for body in bodies:
        conn.request("POST", "/v1/ingest/batch", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = r.read()
        if r.status != 202 or json.loads(answer).get("accepted") != events:
            sys.exit("unexpected answer %d: %s" % (r.status, answer[:300]))
    conn.close()


def main():
    sc_port, fake_port, batches = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    events = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    connections = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    bodies = ['{"events":[' + ",".join(event(rng) for _ in range(events)) + "]}" for _ in range(batches)]

    base = json.loads(get_json(fake_port, "/_control/stats"))["events_received"]  # the fake outlives runs
    if connections <= 1:
        post_all(sc_port, bodies, events)
    else:
        ctx = multiprocessing.get_context("fork")
        posters = [ctx.Process(target=post_all, args=(sc_port, bodies[i::connections], events))
                   for i in range(connections)]
        for p in posters:
            p.start()
        for p in posters:
            p.join()
        if any(p.exitcode != 0 for p in posters):
            sys.exit("a poster failed")

    want = batches * events
    deadline = time.time() + 600
    while json.loads(get_json(fake_port, "/_control/stats"))["events_received"] < base + want:
        if time.time() > deadline:
            sys.exit("the fake ingest did not receive every event in time")
        time.sleep(0.2)
    # The fake counted them when it answered; the sidecar acks the spool once it reads that answer.
    while True:
        delivered = 0
        for line in get_json(sc_port, "/metrics").decode().splitlines():
            if line.startswith("aforo_sidecar_events_delivered_total "):
                delivered = float(line.split()[1])
        if delivered >= want or time.time() > deadline:
            break
        time.sleep(0.2)
    print("posted %d events in %d requests on %d connection(s), avg body %d bytes"
          % (want, batches, connections, sum(map(len, bodies)) // batches))


if __name__ == "__main__":
    main()
