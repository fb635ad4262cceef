"""Open an inferspeed HTML report in headless Chromium and check that every plot shows.

Copies the report, adds a script that counts the images Chromium decoded (complete, at least
100x100 pixels), loads it with ``chromium --headless --dump-dom`` and compares the count with
the number of images. Exit status 0 when every plot shows.

    python bench/check_report_in_chromium.py report.html [--chromium PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth >= 100 && i.naturalHeight >= 100).length;
  document.body.setAttribute('data-shown', ok + '/' + imgs.length);
});
</script>"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        print("no chromium found: install Debian's chromium package or pass --chromium", file=sys.stderr)
        return 2
    with open(args.report, encoding="utf-8") as f:
        html = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "check.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(html.replace("</body>", CHECK + "</body>"))
        cmd = [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
        dom = subprocess.run(
            [*cmd, "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120
        ).stdout
    found = re.search(r'data-shown="(\d+)/(\d+)"', dom)
    if not found:
        print("Chromium did not run the check", file=sys.stderr)
        return 1
    shown, total = int(found.group(1)), int(found.group(2))
    print(f"{shown} of {total} plots shown by {args.chromium}")
    return 0 if shown == total and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
