"""Helpers of the scripts that write generated tables into docs/: run accsim
for a JSON report, and replace a marked block of a Markdown file.

A block is the text between a line `<!-- NAME -->` and a line
`<!-- NAME: end -->`; everything else in the file is left as written.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ACCSIM = os.path.join(REPO, "build", "release", "sim", "accsim")


def accsim_report(accsim, args):
    """Runs `accsim ARGS --report R.json` and returns the report; exits on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r.json")
        cmd = [accsim] + list(args) + ["--report", report]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("%s failed: %s" % (" ".join(cmd), r.stderr.strip()))
        return json.load(open(report))


def replace_block(doc, name, body, check=False):
    """Writes `body` into DOC's block NAME; with check, exits 1 if it differs instead."""
    begin, end = "<!-- %s -->" % name, "<!-- %s: end -->" % name
    text = open(doc).read()
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        sys.exit("%s: no %s ... %s block" % (doc, begin, end))
    new = pattern.sub(lambda m: begin + "\n\n" + body + "\n" + end, text)
    if check:
        if new != text:
            sys.exit("%s: block %s is stale; regenerate it" % (doc, name))
        print("%s: block %s is current" % (doc, name))
    elif new != text:
        open(doc, "w").write(new)
