"""How fast the console shows its first rows: a release `strongroom serve --dev` holding
1 200 secrets over three envs (400 keys in global, prod and staging), Chromium headless
through WebDriver. Each run signs in and times, from the click on Sign in:

- session: until `/api/session` has answered (the baseline: one request that lists
  nothing, on the same connection, in the same run);
- first rows: until the first grid cell is in the page (`/api/session`, then `/api/grid`
  over every env, then the DOM);
- paging: Next (page 2 fetched and drawn), then Previous (page 1 drawn again from what
  the page already holds: the number of `/api/grid` requests must not grow).

    cargo build --release -p strongroom
    python3 benches/console/first_rows.py --strongroom target/release/strongroom --runs 7

Prints the median of each figure and first rows as a ratio of the session baseline.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, token, method, path, body=None):
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request) as response:
        return response.status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strongroom", required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keys", type=int, default=400)
    args = parser.parse_args()
    binary = os.path.abspath(args.strongroom)
    work = tempfile.mkdtemp(prefix="strongroom-console-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "serve", "--dev", "--bind", f"127.0.0.1:{port}"], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/api/health")
                break
            except OSError:
                time.sleep(0.05)
        token = open(os.path.join(work, ".strongroom", "admin.token")).read().strip()
        for env in ["global", "prod", "staging"]:
            for i in range(args.keys):
                call(base, token, "POST", "/api/secrets", {"key": f"KEY_{i:04d}", "value": f"v-{env}-{i}", "env": env})
        figures = {"session": [], "first rows": [], "next page": [], "previous page": []}
        driver = browser()
        try:
            for _ in range(args.runs):
                one_run(driver, base, token, figures)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait()
    print(f"console first rows, {3 * args.keys} secrets over 3 envs, {args.runs} runs (median ms):")
    for name, values in figures.items():
        print(f"  {name:14} {statistics.median(values):7.1f}  (min {min(values):.1f}, max {max(values):.1f})")
    ratio = statistics.median(figures["first rows"]) / statistics.median(figures["session"])
    print(f"  first rows / session baseline: {ratio:.2f}x")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1400,900", f"--user-data-dir={tempfile.mkdtemp(prefix='strongroom-chromium-')}"]:
        options.add_argument(argument)
    return webdriver.Chrome(options=options,
                            service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))


# Clicks Sign in and records, in page time, the click, the session answer and the first
# grid cell.
SIGN_IN = """
const done = arguments[arguments.length - 1];
window.__t = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.name.endsWith('/api/session') && !window.__t.session) window.__t.session = e.responseEnd;
}).observe({ type: 'resource' });
const seen = new MutationObserver(() => {
  if (document.querySelector("[data-testid='grid-cell']")) {
    window.__t.rows = performance.now();
    seen.disconnect();
    setTimeout(() => done(window.__t), 50);
  }
});
seen.observe(document.body, { childList: true, subtree: true });
document.getElementById('token').value = arguments[0];
window.__t.click = performance.now();
document.querySelector("[data-testid='sign-in']").click();
"""

# Clicks a pager button and records when the grid's first key changes.
PAGE = """
const done = arguments[arguments.length - 1];
const first = () => document.querySelector("[data-testid='grid-row']")?.dataset.key;
const before = first();
const grids = () => performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/grid')).length;
const fetched = grids();
const start = performance.now();
const seen = new MutationObserver(() => {
  if (first() && first() !== before) {
    seen.disconnect();
    done({ ms: performance.now() - start, fetches: grids() - fetched });
  }
});
seen.observe(document.getElementById('grid-rows'), { childList: true });
document.getElementById(arguments[0]).click();
"""


def one_run(driver, base, token, figures):
    driver.get(f"{base}/_/")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "token").is_displayed())
    driver.set_script_timeout(30)
    times = driver.execute_async_script(SIGN_IN, token)
    figures["session"].append(times["session"] - times["click"])
    figures["first rows"].append(times["rows"] - times["click"])
    forward = driver.execute_async_script(PAGE, "next-page")
    figures["next page"].append(forward["ms"])
    back = driver.execute_async_script(PAGE, "prev-page")
    figures["previous page"].append(back["ms"])
    assert forward["fetches"] == 1 and back["fetches"] == 0, (forward, back)
    driver.find_element(By.CSS_SELECTOR, "[data-testid='sign-out']").click()


if __name__ == "__main__":
    sys.exit(main())
