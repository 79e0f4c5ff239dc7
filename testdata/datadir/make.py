#!/usr/bin/env python3
"""Makes testdata/datadir/metrics2.tar.gz: a small data dir a real Prometheus 3.5.3 wrote.

Prometheus 3.5.3 (target/sid-tools/usr/bin/prometheus, `bash .ci/sid-tools`) runs for about six
minutes with 1-minute blocks and native histograms on, scraping every 2 s:
- two Elasticsearch exporters (made up here, with the metric names and labels of the real one and
  of testdata/sample.dump: clusters es-prod-0 and es-prod-1, nodes es-data-0000 to es-data-0003),
  the metrics testdata/dashboards/elasticsearch.json queries and a few it does not;
- itself over protobuf, keeping only its HTTP latency histogram (an exponential native histogram)
  and the scrape series.
Staleness markers in blocks and in the head: es-prod-0's exporter goes away for a minute (the
target vanishes) and comes back; es-prod-1 drops node es-data-0003's series for a minute (the
series vanish, the target stays), twice. es-data-0001's disk gauge is a real NaN for three
scrapes. Prometheus is then stopped (SIGTERM), leaving blocks, a WAL with a checkpoint, chunks_head
and its other files as a stopped server leaves them.

Usage: python3 testdata/datadir/make.py OUT_DIR   (about seven minutes; needs free ports)
Writes OUT_DIR/metrics2 (the data dir), OUT_DIR/prometheus.yml, OUT_DIR/prometheus.log and
OUT_DIR/metrics2.tar.gz (files sorted, owner root, mtimes of the run; copy it to testdata/datadir/).
"""

import http.server
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
PROM = os.path.join(ROOT, "../../target/sid-tools/usr/bin/prometheus")
SCRAPE_S = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """One cluster's Elasticsearch exporter: cluster health, and per node indexing, search, JVM,
    OS and disk figures that move with each scrape (counters only grow)."""

    def __init__(self, port, cluster, nodes):
        self.port, self.cluster, self.nodes = port, cluster, nodes
        self.n = 0
        self.hidden = set()  # nodes whose series are left out (they left the cluster)
        self.nan_disk = set()  # nodes whose disk gauge is NaN
        self.srv = None
        self.start()

    def start(self):
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

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def text(self):
        self.n += 1
        n, c = self.n, self.cluster
        up = [i for i in self.nodes if i not in self.hidden]
        out = []

        def metric(name, kind, rows):
            out.append(f"# TYPE {name} {kind}\n")
            for labels, value in rows:
                out.append(f"{name}{{{labels}}} {value}\n")

        def node(i, extra=""):
            return f'cluster="{c}",name="es-data-{i:04d}"{extra}'

        metric("elasticsearch_cluster_health_status", "gauge",
               [(f'cluster="{c}",color="{col}"', int(col == "green"))
                for col in ("green", "red", "yellow")])
        metric("elasticsearch_cluster_health_number_of_nodes", "gauge",
               [(f'cluster="{c}"', len(up))])
        metric("elasticsearch_cluster_health_active_shards", "gauge",
               [(f'cluster="{c}"', 40 * len(up) + n % 3)])
        metric("elasticsearch_indices_docs", "gauge",
               [(node(i), 1_000_000 * (i + 1) + 37 * n * (i + 1)) for i in up])
        metric("elasticsearch_indices_indexing_index_total", "counter",
               [(node(i), 500_000 + 37 * n * (i + 1)) for i in up])
        metric("elasticsearch_indices_search_query_total", "counter",
               [(node(i), 90_000 + (11 + i) * n) for i in up])
        metric("elasticsearch_jvm_memory_used_bytes", "gauge",
               [(node(i, f',area="{a}"'), (1 << 30) * (1 + k) + ((n * 7919 + i) % 97) * (1 << 20))
                for i in up for k, a in enumerate(("heap", "non-heap"))])
        metric("elasticsearch_jvm_gc_collection_seconds_count", "counter",
               [(node(i, f',gc="{g}"'), (n // (3 + k)) * (i + 1))
                for i in up for k, g in enumerate(("old", "young"))])
        metric("elasticsearch_os_cpu_percent", "gauge",
               [(node(i), (n * 7 + i * 13) % 100) for i in up])
        metric("elasticsearch_filesystem_data_available_bytes", "gauge",
               [(node(i), "NaN" if i in self.nan_disk else 500 * (1 << 30) - n * 4096 * (i + 1))
                for i in up])
        metric("elasticsearch_process_open_files_count", "gauge",
               [(node(i), 900 + (n * 3 + i) % 40) for i in up])
        metric("elasticsearch_thread_pool_active_count", "gauge",
               [(node(i, f',type="{t}"'), (n + i + k) % 5)
                for i in up for k, t in enumerate(("search", "write"))])
        return "".join(out)


def config(path, pport, es0, es1):
    with open(path, "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE_S}s
scrape_configs:
  - job_name: prometheus
    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
    static_configs: [{{targets: ['127.0.0.1:{pport}']}}]
    relabel_configs: [{{target_label: instance, replacement: 'prometheus:9090'}}]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'prometheus_http_request_duration_seconds'
        action: keep
  - job_name: elasticsearch
    static_configs:
      - targets: ['127.0.0.1:{es0}']
        labels: {{instance: '10.1.0.0:9114'}}
      - targets: ['127.0.0.1:{es1}']
        labels: {{instance: '10.1.0.1:9114'}}
""")


def tar(src, dest):
    """The data dir as metrics2/, files sorted, owned by root: the same tree whoever makes it."""

    def clean(info):
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(dest, "w:gz", compresslevel=9) as t:
        for dirpath, dirs, files in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(dirpath, os.path.dirname(src))
            t.add(dirpath, arcname=rel, recursive=False, filter=clean)
            for name in sorted(files):
                t.add(os.path.join(dirpath, name), arcname=os.path.join(rel, name), filter=clean)


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "metrics2")
    pport, p0, p1 = free_port(), free_port(), free_port()
    config(os.path.join(out, "prometheus.yml"), pport, p0, p1)
    es0 = Exporter(p0, "es-prod-0", [0, 2])
    es1 = Exporter(p1, "es-prod-1", [1, 3])
    prom = subprocess.Popen(
        [PROM, f"--config.file={out}/prometheus.yml", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{pport}", "--enable-feature=native-histograms",
         "--storage.tsdb.min-block-duration=1m", "--storage.tsdb.max-block-duration=2m"],
        stdout=open(os.path.join(out, "prometheus.log"), "w"), stderr=subprocess.STDOUT)
    t0 = time.time()

    def at(s, what):
        time.sleep(max(0, t0 + s - time.time()))
        print(f"{time.time():.3f} (+{s} s) {what}", flush=True)

    try:
        at(70, "es-data-0003 leaves es-prod-1 (its series vanish)")
        es1.hidden.add(3)
        at(95, "es-data-0001's disk gauge is NaN")
        es1.nan_disk.add(1)
        at(101, "es-data-0001's disk gauge is back")
        es1.nan_disk.clear()
        at(130, "es-data-0003 is back")
        es1.hidden.clear()
        at(150, "es-prod-0's exporter goes away (the target vanishes)")
        es0.stop()
        at(210, "es-prod-0's exporter is back")
        es0.start()
        at(330, "es-data-0003 leaves es-prod-1 again (markers in the head)")
        es1.hidden.add(3)
        at(360, "es-data-0003 is back")
        es1.hidden.clear()
        at(380, "Prometheus stopped")
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait()
        for e in (es0, es1):
            try:
                e.stop()
            except Exception:
                pass
    tar(data, os.path.join(out, "metrics2.tar.gz"))
    print("wrote", os.path.join(out, "metrics2.tar.gz"),
          os.path.getsize(os.path.join(out, "metrics2.tar.gz")), "bytes")


if __name__ == "__main__":
    main()
