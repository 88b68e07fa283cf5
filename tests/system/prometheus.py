"""A real Prometheus for the steerdns system tests (not a test file): Debian's
`prometheus` (make test installs it), started by the test on a free port of
127.0.0.1 with its own temporary storage, scraping steerdns's admin API every
second and evaluating rule files every second; stopped by its PID.

  * Prometheus(targets, rule_files): a context manager; .url, .log()
  * .query(expr): the HTTP API's /api/v1/query answer (a dict), never raising
    on a PromQL error (status "error" is the answer)
  * .rules(), .alerts(): /api/v1/rules and /api/v1/alerts
  * .wait_ready(): until /-/ready answers and every target was scraped up

Traffic stays on 127.0.0.1: Prometheus scrapes only the targets given, has
no Alertmanager and no remote write. Every wait polls with common.DEADLINE.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from common import DEADLINE, free_port, tail, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JOB = "steerdns"  # the job name the shipped rules select

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def config_text(targets, rule_files):
    """prometheus.yml: one job, every second, the rule files evaluated every second."""
    return json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": list(rule_files),
        "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics",
                            "static_configs": [{"targets": list(targets)}]}],
    }, indent=2) + "\n"  # JSON is YAML


class Prometheus:
    def __init__(self, targets, rule_files=()):
        if not os.access(PROMETHEUS, os.X_OK):
            raise AssertionError("prometheus not found at %s (make test installs Debian's prometheus)"
                                 % PROMETHEUS)
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.port = free_port("127.0.0.1")
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self._tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="steerdns-prometheus-")
        d = self._tmp.name
        self.config_path = os.path.join(d, "prometheus.yml")
        with open(self.config_path, "w") as f:
            f.write(config_text(self.targets, self.rule_files))
        self.log_path = os.path.join(d, "prometheus.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config_path,
             "--storage.tsdb.path=" + os.path.join(d, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--log.level=info"],
            cwd=d, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()  # by its PID
                try:
                    self.proc.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=DEADLINE)
            self.proc = None
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def get(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with _OPENER.open(url, timeout=DEADLINE) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:  # 400, 422: a PromQL error, in JSON
            return exc.code, exc.read().decode("utf-8")

    def api(self, path, **params):
        status, body = self.get(path, **params)
        try:
            return json.loads(body)
        except ValueError:
            raise AssertionError("%s: HTTP %d, not JSON: %s" % (path, status, body[:500])) from None

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)

    def vector(self, expr):
        """The result of an instant query that must succeed: [(labels, value)]."""
        doc = self.query(expr)
        assert doc.get("status") == "success", "%s: %s" % (expr, doc)
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def rules(self):
        doc = self.api("/api/v1/rules")
        assert doc.get("status") == "success", doc
        return doc["data"]["groups"]

    def alerts(self):
        doc = self.api("/api/v1/alerts")
        assert doc.get("status") == "success", doc
        return doc["data"]["alerts"]

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited %s:\n%s" % (self.proc.returncode, tail(self.log())))
            status, _ = self.get("/-/ready")
            if status != 200:
                return False
            up = self.vector('up{job="%s"} == 1' % JOB)
            return len(up) == len(self.targets)
        try:
            wait_for(ready, interval=0.2, what="prometheus ready, every target scraped up")
        except AssertionError as exc:
            raise AssertionError("%s\nprometheus log (tail):\n%s" % (exc, tail(self.log()))) from None
