"""Render an HTML report in headless Chromium and save a screenshot, to look at it.

Usage (from the repository root; needs Debian's chromium: apt-get install -y chromium)::

    python scripts/screenshot_report.py [--out DIR] [--model FORMULA_OR_SPEC] [--data NAME]

Fits the model (default: the High School and Beyond intercepts- and slopes-as-outcomes
model in level-equation form) to a bundled data set, writes ``report.html`` and
``report.png`` (a full-page screenshot, 1100 px wide) into DIR (default ``report_check``),
and prints their paths.  The page must render with no network: Chromium is run with
networking disabled through a proxy that does not exist, so any external resource fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HSB_SPEC = """\
level1: MathAch ~ cses
level2: (Intercept) ~ MEANSES + Sector
level2: cses ~ MEANSES + Sector
group: School
random: (Intercept), cses
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="report_check")
    ap.add_argument("--data", default="hsb")
    ap.add_argument("--model", default=HSB_SPEC)
    ap.add_argument("--height", type=int, default=6000, help="page height in pixels")
    args = ap.parse_args(argv)
    import hlm
    from hlm.cli.fitting import read_model

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = hlm.fit(read_model(args.model, None), hlm.datasets.load(args.data))
    page = out / "report.html"
    page.write_text(res.to_html(progress=False), encoding="utf-8")
    shot = out / "report.png"
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9", f"--window-size=1100,{args.height}",
            f"--screenshot={shot.resolve()}", page.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )
    print(page)
    print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
