"""Every config shown in README.md and docs/*.md loads (issue #5): `steerdns check` on each.

The documents are README.md and every docs/*.md (globbed: a new page is
covered as soon as it appears). Each ```yaml block of a document starts with
`# file: PATH`; the blocks of one document are written into one temporary tree
at their paths (a tree per document, so two documents may show different
versions of one file, say /etc/steerdns/steerdns.yaml). Absolute paths of
steerdns's own folders (/etc/steerdns, /var/lib/steerdns), in `# file:` and
inside the blocks, are rooted in that tree, so the documents can show the real
ones. Main configs (a top-level `server:` key) are checked as they are. Zone
files and state files that no config of their document uses are checked
through a minimal config of their own (state files with the repository's
example zone). Prometheus configs (a top-level `scrape_configs:`) are checked
by `promtool check config`, which checks the rule files they load too: the
installed share/steerdns/prometheus/ and grafana/ folders are the
repository's deploy/prometheus/ and deploy/grafana/. Prometheus rule files
(`*.rules.yml`) are checked by `promtool check rules`. A block of any other
kind, or without `# file:`, fails the test: nothing in the documents escapes
it.

The documents' relative links must also lead to files of the repository, a
link to a heading (`page.md#anchor`) to a heading that exists, and the
README's first screen must link the documentation pages and bench/README.md.
Every `FILE: FUNCTION` that docs/architecture.md names must be a file of the
repository that defines or declares that function: the walk through the code
cannot go stale unnoticed. So must the `runbook:` of every shipped alert
(deploy/prometheus/steerdns.rules.yml): a heading of docs/alerting.md, one
per alert.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

README = os.path.join(h.REPO, "README.md")
DOCS = os.path.join(h.REPO, "docs")
EXAMPLE_ZONE = os.path.join(h.REPO, "examples", "zones", "example.com.yaml")
# The README's first screen (its first 40 lines) links each of these.
FIRST_SCREEN_LINES = 40
FIRST_SCREEN_LINKS = ("docs/architecture.md", "docs/configuration.md", "docs/operations.md",
                      "docs/testing.md", "bench/README.md")
# docs/architecture.md walks a query as `FILE: FUNCTION` hops; each must exist.
ARCHITECTURE = os.path.join(DOCS, "architecture.md")
ALERTING = os.path.join(DOCS, "alerting.md")
RULES = os.path.join(h.REPO, "deploy", "prometheus", "steerdns.rules.yml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# Installed folders a document may name, and where they are in the repository.
INSTALLED = {"/usr/local/share/steerdns/prometheus/": os.path.join(h.REPO, "deploy", "prometheus") + "/",
             "/usr/local/share/steerdns/grafana/": os.path.join(h.REPO, "deploy", "grafana") + "/"}


def documents():
    """README.md, then every docs/*.md in name order."""
    return [README] + sorted(glob.glob(os.path.join(DOCS, "*.md")))


def rel(path):
    return os.path.relpath(path, h.REPO)


def yaml_blocks(text):
    """(line number, body) of every ```yaml fenced block."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((start + 1, "\n".join(lines[start:j]) + "\n"))
            i = j
        i += 1
    return out


def kind_of(body):
    if re.search(r"(?m)^zone:", body):
        return "zone"
    if re.search(r"(?m)^server:", body):
        return "config"
    if re.search(r"(?m)^(regions|vips):", body):
        return "state"
    if re.search(r"(?m)^scrape_configs:", body):
        return "prometheus"
    return None


def prose_lines(text, code=False):
    """(line number, line) outside fenced blocks, inline code removed (CODE:
    kept, without its backticks)."""
    out = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line.replace("`", "") if code else re.sub(r"`[^`]*`", "", line)))
    return out


def links(text):
    """(line number, target) of every inline markdown link outside code."""
    return [(number, m.group(1)) for number, line in prose_lines(text)
            for m in re.finditer(r"\]\(([^)\s]+)\)", line)]


def anchors(text):
    """GitHub's anchors of the headings of a markdown text."""
    out = set()
    seen = {}
    for _, line in prose_lines(text, code=True):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else "%s-%d" % (slug, n))
    return out


class Document:
    """One document's yaml blocks, written into a temporary tree of its own."""

    def __init__(self, path):
        self.path = path
        self.name = rel(path)
        with open(path) as f:
            self.text = f.read()
        self.tmp = tempfile.TemporaryDirectory(prefix="steerdns-docs-")
        self.root = self.tmp.name
        self.files = {}  # path -> (line, body)
        for line, body in yaml_blocks(self.text):
            m = re.match(r"# file: (\S+)\n", body)
            if not m:
                raise AssertionError("%s:%d: a yaml block must start with '# file: PATH'" % (self.name, line))
            path = m.group(1).lstrip("/")
            if path in self.files:
                raise AssertionError("%s:%d: '%s' already shown at line %d"
                                     % (self.name, line, path, self.files[path][0]))
            self.files[path] = (line, body)
            full = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(self.rooted(body))
        os.makedirs(os.path.join(self.root, "var/lib/steerdns"), exist_ok=True)

    def rooted(self, text):
        for folder in ("/etc/steerdns", "/var/lib/steerdns"):
            text = text.replace(folder, self.root + folder)
        for installed, source in INSTALLED.items():
            text = text.replace(installed, source)
        return text


class DocumentConfigsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require_binary()
        cls.docs = []
        for path in documents():
            cls.docs.append(Document(path))

    @classmethod
    def tearDownClass(cls):
        for doc in cls.docs:
            doc.tmp.cleanup()

    def check(self, config, where):
        p = subprocess.run([h.BIN, "check", "-c", config], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "%s: steerdns check failed:\n%s" % (where, p.stderr))
        return p.stdout

    def test_the_documents_show_configs(self):
        kinds = [kind_of(body) for doc in self.docs for _, body in doc.files.values()]
        self.assertGreaterEqual(kinds.count("config"), 1)
        self.assertGreaterEqual(kinds.count("zone"), 1)
        self.assertGreaterEqual(kinds.count("state"), 1)

    def test_every_block_loads(self):
        for doc in self.docs:
            self.check_document(doc)

    def check_document(self, doc):
        used = set()
        # Main configs first: they also cover the zone and state files they name.
        for path, (line, body) in doc.files.items():
            if kind_of(body) != "config":
                continue
            with self.subTest(doc=doc.name, path=path):
                self.check(os.path.join(doc.root, path), "%s:%d" % (doc.name, line))
            folder = os.path.dirname(path)
            for ref in re.findall(r"[\w./-]+\.ya?ml", body):
                if not ref.startswith("/"):
                    used.add(os.path.normpath(os.path.join(folder, ref)))
            for ref in re.findall(r"(/(?:etc|var/lib)/steerdns/[\w./-]+\.ya?ml)", body):
                used.add(os.path.normpath(ref.lstrip("/")))
            # A zones folder covers every zone file in it.
            for ref in re.findall(r"(?m)^zones: ([^\s#]+)", body):
                base = ref.lstrip("/") if ref.startswith("/") else os.path.join(folder, ref)
                used.update(os.path.normpath(p) for p in doc.files
                            if os.path.normpath(p).startswith(os.path.normpath(base) + "/"))
        for path, (line, body) in doc.files.items():
            kind = kind_of(body)
            if kind == "config" or os.path.normpath(path) in used:
                continue
            with self.subTest(doc=doc.name, path=path):
                where = "%s:%d" % (doc.name, line)
                if path.endswith(".rules.yml") or kind == "prometheus":
                    self.promtool(["check", "rules" if kind != "prometheus" else "config",
                                   os.path.join(doc.root, path)], where)
                    continue
                self.assertIn(kind, ("zone", "state"),
                              "%s: '%s' is neither a config, a zone nor a state file" % (where, path))
                full = os.path.join(doc.root, path)
                config = full + ".check-config.yaml"
                with open(config, "w") as f:
                    f.write("server:\n  listen: [\"127.0.0.1:5353\"]\n")
                    if kind == "zone":
                        f.write("zones: [%s]\n" % full)
                    else:
                        f.write("zones: [%s]\nhealth:\n  state_file: %s\n" % (EXAMPLE_ZONE, full))
                self.check(config, where)

    def promtool(self, args, where):
        self.assertTrue(os.access(PROMTOOL, os.X_OK), "promtool not found (make test installs prometheus)")
        p = subprocess.run([PROMTOOL] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "%s: promtool %s failed:\n%s%s" % (where, args[1], p.stdout, p.stderr))

    def test_a_broken_block_would_fail(self):
        # The check is real: a state file with a bad value is refused.
        with tempfile.TemporaryDirectory(prefix="steerdns-docs-") as d:
            state = os.path.join(d, "state.yaml")
            with open(state, "w") as f:
                f.write("regions:\n  paris: drained\n")
            config = os.path.join(d, "steerdns.yaml")
            with open(config, "w") as f:
                f.write("server:\n  listen: [\"127.0.0.1:5353\"]\nzones: [%s]\nhealth:\n  state_file: %s\n"
                        % (EXAMPLE_ZONE, state))
            p = subprocess.run([h.BIN, "check", "-c", config], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn(state + ":2:", p.stderr)

    def test_links_lead_somewhere(self):
        for doc in self.docs:
            for line, target in links(doc.text):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                where = "%s:%d: link '%s'" % (doc.name, line, target)
                path, _, anchor = target.partition("#")
                full = os.path.normpath(os.path.join(os.path.dirname(doc.path), path)) if path else doc.path
                with self.subTest(doc=doc.name, line=line, target=target):
                    self.assertTrue(os.path.exists(full), "%s: no file %s" % (where, rel(full)))
                    self.assertTrue(full.startswith(h.REPO + os.sep), "%s: outside the repository" % where)
                    if anchor and full.endswith(".md"):
                        with open(full) as f:
                            self.assertIn(anchor, anchors(f.read()), "%s: no such heading" % where)

    def test_the_readme_first_screen_links_the_docs(self):
        readme = next(doc for doc in self.docs if doc.path == README)
        first = {os.path.normpath(t.partition("#")[0]) for line, t in links(readme.text)
                 if line <= FIRST_SCREEN_LINES}
        for target in FIRST_SCREEN_LINKS:
            self.assertIn(target, first, "README.md: the first %d lines must link %s" % (FIRST_SCREEN_LINES, target))
        linked = {os.path.normpath(t.partition("#")[0]) for _, t in links(readme.text)}
        for doc in self.docs[1:]:
            self.assertIn(doc.name, linked, "README.md must link %s" % doc.name)


    def test_every_alert_has_its_runbook(self):
        with open(RULES) as f:
            rules = f.read()
        with open(ALERTING) as f:
            headings = anchors(f.read())
        alerts = re.findall(r"(?m)^\s*- alert: (\w+)$", rules)
        runbooks = re.findall(r"(?m)^\s*runbook: (\S+)$", rules)
        self.assertGreater(len(alerts), 10)
        self.assertEqual(len(runbooks), len(alerts), "every alert has one runbook")
        for alert, runbook in zip(alerts, runbooks):
            with self.subTest(alert=alert):
                self.assertEqual(runbook, "docs/alerting.md#" + alert.lower())
                self.assertIn(alert.lower(), headings, "docs/alerting.md has no heading " + alert)

    def test_the_architecture_names_real_code(self):
        with open(ARCHITECTURE) as f:
            text = f.read()
        hops = re.findall(r"`([\w/]+\.(?:cpp|hpp)): ([\w:]+)`", text)
        self.assertGreater(len(hops), 20, "docs/architecture.md walks a query through the code")
        for path, function in hops:
            with self.subTest(path=path, function=function):
                full = os.path.join(h.REPO, path)
                self.assertTrue(os.path.exists(full), "docs/architecture.md: no file %s" % path)
                with open(full) as f:
                    code = f.read()
                name = function.split("::")[-1]
                self.assertRegex(code, r"\b%s\(" % re.escape(name),
                                 "docs/architecture.md: %s has no function %s" % (path, function))


if __name__ == "__main__":
    unittest.main(verbosity=2)
