"""Every config shown in README.md loads (issue #5): `steerdns check` on each.

Each ```yaml block of the README starts with `# file: PATH`; the blocks are
written into one temporary tree at their paths. Absolute paths of steerdns's
own folders (/etc/steerdns, /var/lib/steerdns), in `# file:` and inside the
blocks, are rooted in that tree, so the README can show the real ones. Main configs (a top-level
`server:` key) are checked as they are. Zone files and state files that no
README config uses are checked through a minimal config of their own (state
files with the repository's example zone). Prometheus rule files
(`*.rules.yml`) are only required to be there. A block of any other kind, or
without `# file:`, fails the test: nothing in the README escapes it.
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

README = os.path.join(h.REPO, "README.md")
EXAMPLE_ZONE = os.path.join(h.REPO, "examples", "zones", "example.com.yaml")


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
    return None


class ReadmeConfigsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require_binary()
        with open(README) as f:
            cls.blocks = yaml_blocks(f.read())
        cls.tmp = tempfile.TemporaryDirectory(prefix="steerdns-readme-")
        cls.files = {}  # path -> (line, body)
        for line, body in cls.blocks:
            m = re.match(r"# file: (\S+)\n", body)
            if not m:
                raise AssertionError("README.md:%d: a yaml block must start with '# file: PATH'" % line)
            path = m.group(1).lstrip("/")
            if path in cls.files:
                raise AssertionError("README.md:%d: '%s' already shown at line %d"
                                     % (line, path, cls.files[path][0]))
            cls.files[path] = (line, body)
            full = os.path.join(cls.tmp.name, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(cls.rooted(body))
        os.makedirs(os.path.join(cls.tmp.name, "var/lib/steerdns"), exist_ok=True)

    @classmethod
    def rooted(cls, text):
        for folder in ("/etc/steerdns", "/var/lib/steerdns"):
            text = text.replace(folder, cls.tmp.name + folder)
        return text

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, config, line):
        p = subprocess.run([h.BIN, "check", "-c", config], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "README.md:%d: steerdns check failed:\n%s" % (line, p.stderr))
        return p.stdout

    def test_the_readme_shows_configs(self):
        kinds = [kind_of(body) for _, body in self.files.values()]
        self.assertGreaterEqual(kinds.count("config"), 1)
        self.assertGreaterEqual(kinds.count("zone"), 1)
        self.assertGreaterEqual(kinds.count("state"), 1)

    def test_every_block_loads(self):
        used = set()
        # Main configs first: they also cover the zone and state files they name.
        for path, (line, body) in self.files.items():
            if kind_of(body) != "config":
                continue
            with self.subTest(path=path):
                self.check(os.path.join(self.tmp.name, path), line)
                folder = os.path.dirname(path)
                for ref in re.findall(r"[\w./-]+\.ya?ml", body):
                    if not ref.startswith("/"):
                        used.add(os.path.normpath(os.path.join(folder, ref)))
                for ref in re.findall(r"(/(?:etc|var/lib)/steerdns/[\w./-]+\.ya?ml)", body):
                    used.add(os.path.normpath(ref.lstrip("/")))
                # A zones folder covers every zone file in it.
                for ref in re.findall(r"(?m)^zones: ([^\s#]+)", body):
                    base = ref.lstrip("/") if ref.startswith("/") else os.path.join(folder, ref)
                    used.update(os.path.normpath(p) for p in self.files
                                if os.path.normpath(p).startswith(os.path.normpath(base) + "/"))
        for path, (line, body) in self.files.items():
            kind = kind_of(body)
            if kind == "config" or os.path.normpath(path) in used:
                continue
            with self.subTest(path=path):
                if path.endswith(".rules.yml"):
                    continue
                self.assertIn(kind, ("zone", "state"),
                              "README.md:%d: '%s' is neither a config, a zone nor a state file" % (line, path))
                full = os.path.join(self.tmp.name, path)
                config = full + ".check-config.yaml"
                with open(config, "w") as f:
                    f.write("server:\n  listen: [\"127.0.0.1:5353\"]\n")
                    if kind == "zone":
                        f.write("zones: [%s]\n" % full)
                    else:
                        f.write("zones: [%s]\nhealth:\n  state_file: %s\n" % (EXAMPLE_ZONE, full))
                self.check(config, line)

    def test_a_broken_block_would_fail(self):
        # The check is real: a state file with a bad value is refused.
        with tempfile.TemporaryDirectory(prefix="steerdns-readme-") as d:
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
