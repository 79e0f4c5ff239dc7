#!/usr/bin/env python3
"""Makes the native-histogram fixture: a Prometheus 3.5.3 data dir and what its query API answers.

Prometheus 3.5.3 (target/sid-tools/usr/bin/prometheus, `bash .ci/sid-tools`) runs with native
histograms on and 1-minute blocks, scraping itself over protobuf every second (its own latency
histograms are exponential native histograms) and a tiny exporter whose classic histogram it
stores as a native histogram with custom buckets (NHCB, schema -53); recording rules turn both
into float (gauge) histograms. In the minute the fixture keeps, the exporter goes away (staleness
markers) and comes back with its counters reset and `exp_mixed`, a gauge before, a histogram (a
series with float and histogram chunks); a second one (job "resetter") resets its counters
between two scrapes (a chunk cut for a counter reset).

Usage: testdata/tsdb/histograms/make.py OUT_DIR   (about five minutes; needs free ports)
Writes OUT_DIR/data (the whole data dir), OUT_DIR/block (the 1-minute block of that minute),
OUT_DIR/wal (the WAL as it was when the block was cut: it still holds the minute's records) and
OUT_DIR/expected.json: every series of that block with histogram samples, with the raw samples
the query API returns for the block's time range (as the API prints them), one a line.
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.abspath(__file__))
PROM = os.path.join(ROOT, "../../../target/sid-tools/usr/bin/prometheus")
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """Serves a classic histogram whose counts grow with each scrape; `mixed_histogram` makes
    `exp_mixed` a histogram instead of a gauge."""

    def __init__(self, port, mixed_histogram):
        self.n = 0
        self.counts, self.sums = {}, {}
        self.mixed = mixed_histogram
        exporter = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def histogram(self, name, scale):
        """Classic histogram text; each scrape observes a few more values (counters only grow
        until the exporter restarts)."""
        n = self.n
        counts = self.counts.setdefault(name, [0] * (len(BOUNDS) + 1))
        for i in range(len(counts)):
            counts[i] += (n * (i + 1) * scale) % 7 + (n // 3) * (i % 3)
        out = [f"# TYPE {name} histogram\n"]
        cum = 0
        for b, c in zip(BOUNDS + ["+Inf"], counts):
            cum += c
            out.append(f'{name}_bucket{{le="{b}"}} {cum}\n')
        self.sums[name] = self.sums.get(name, 0) + n * 0.137 * scale
        out.append(f"{name}_sum {self.sums[name]}\n")
        out.append(f"{name}_count {cum}\n")
        return "".join(out)

    def text(self):
        self.n += 1
        t = self.histogram("exp_latency_seconds", 1)
        if self.mixed:
            t += self.histogram("exp_mixed", 2)
        else:
            t += f"# TYPE exp_mixed gauge\nexp_mixed {self.n * 1.5}\n"
        return t

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def write_expected(path, block, mint, maxt, result):
    """The series with histogram samples, one sample a line."""
    dump = lambda x: json.dumps(x, separators=(",", ":"), sort_keys=True)
    with open(path, "w") as f:
        f.write(f'{{"block":{dump(block)},"mint":{mint},"maxt":{maxt},"series":[\n')
        series = [r for r in result if r.get("histograms")]
        for i, r in enumerate(series):
            f.write(f'{{"metric":{dump(r["metric"])},\n"values":[')
            f.write(",\n".join(dump(v) for v in r.get("values", [])))
            f.write('],\n"histograms":[\n')
            f.write(",\n".join(dump(h) for h in r["histograms"]))
            f.write("]}" + ("," if i + 1 < len(series) else "") + "\n")
        f.write("]}\n")


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "data")
    pport, eport, rport = free_port(), free_port(), free_port()
    with open(os.path.join(out, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: prometheus
    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
    static_configs: [{{targets: ['127.0.0.1:{pport}']}}]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'prometheus_http_request_duration_seconds|prometheus_tsdb_compaction_duration_seconds|prometheus_engine_query_duration_seconds|up'
        action: keep
  - job_name: exporter
    convert_classic_histograms_to_nhcb: true
    static_configs: [{{targets: ['127.0.0.1:{eport}']}}]
  - job_name: resetter
    convert_classic_histograms_to_nhcb: true
    static_configs: [{{targets: ['127.0.0.1:{rport}']}}]
""")
    with open(os.path.join(out, "rules.yml"), "w") as f:
        f.write("""groups:
  - name: h
    interval: 1s
    rules:
      - record: exp_latency_seconds:rate5s
        expr: rate(exp_latency_seconds[5s])
      - record: prometheus_http_request_duration_seconds:rate5s
        expr: sum(rate(prometheus_http_request_duration_seconds[5s]))
""")
    exp = Exporter(eport, False)
    resetter = Exporter(rport, False)
    prom = subprocess.Popen(
        [PROM, f"--config.file={out}/prometheus.yml", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{pport}", "--enable-feature=native-histograms",
         "--storage.tsdb.min-block-duration=1m", "--storage.tsdb.max-block-duration=2m"],
        stdout=open(os.path.join(out, "prometheus.log"), "w"), stderr=subprocess.STDOUT)
    try:
        # The minute the fixture keeps starts at least 70 s after the start.
        now = time.time()
        m = (int(now + 70) // 60 + 1) * 60
        time.sleep(m + 15 - time.time())
        exp.stop()
        print("exporter gone at", time.time(), flush=True)
        time.sleep(m + 25 - time.time())
        resetter.n, resetter.counts, resetter.sums = 0, {}, {}
        print("resetter's counters reset at", time.time(), flush=True)
        time.sleep(m + 35 - time.time())
        exp = Exporter(eport, True)
        print("exporter back (reset, exp_mixed a histogram) at", time.time(), flush=True)
        # Until the minute is a block of its own (the head cuts it once it spans 1.5 minutes);
        # the WAL then still holds the minute's records.
        block = None
        while block is None and time.time() < m + 400:
            time.sleep(2)
            for d in sorted(os.listdir(data)):
                meta = os.path.join(data, d, "meta.json")
                if os.path.exists(meta):
                    j = json.load(open(meta))
                    if m * 1000 <= j["minTime"] and j["maxTime"] == (m + 60) * 1000:
                        block, mint, maxt = d, j["minTime"], j["maxTime"] - 1
        if block is None:
            raise SystemExit("no block for the minute")
        shutil.copytree(os.path.join(data, "wal"), os.path.join(out, "wal"))
        shutil.copytree(os.path.join(data, block), os.path.join(out, "block"))
        api = f"http://127.0.0.1:{pport}/api/v1"
        names = get(f"{api}/label/__name__/values?start={mint/1000}&end={maxt/1000}")["data"]
        result = []
        for n in names:
            rng = int((maxt - mint) / 1000) + 1
            q = urllib.parse.quote(f'{{__name__="{n}"}}[{rng}s]')
            r = get(f"{api}/query?query={q}&time={maxt/1000:.3f}")
            result.extend(r["data"]["result"])
        write_expected(os.path.join(out, "expected.json"), block, mint, maxt, result)
        print("block", block, "series", len(result), flush=True)
    finally:
        prom.terminate()
        prom.wait()
        exp.stop()
        resetter.stop()


if __name__ == "__main__":
    main()
