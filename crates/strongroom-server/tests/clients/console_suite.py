"""The web console in a real browser: Debian's Chromium, headless, driven through
WebDriver (chromedriver) by Selenium. Run by tests/console.rs against a real server;
each step asserts what a user would see. Screenshots of the main pages are written to
$SCREENSHOTS (under the target directory; copy them to docs/console/ to refresh the
pictures docs/console.md shows).
"""

import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException, StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["CONSOLE_URL"]
ADMIN = os.environ["ADMIN_TOKEN"]
SCOPED = os.environ["SCOPED_TOKEN"]
NAMESPACE_WIDE = os.environ["NAMESPACE_TOKEN"]
SHOTS = os.environ.get("SCREENSHOTS")
HOSTILE = os.environ["HOSTILE_DESCRIPTION"]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,900",
        f"--user-data-dir={tempfile.mkdtemp(prefix='strongroom-chromium-')}",
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


AXE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_modules", "axe-core", "axe.min.js")).read()
AXE_FOUND = []


def axe(where):
    """axe-core (Deque's accessibility engine) on the page as it is: every violation, of
    any impact, is collected and reported at the end."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE)
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then("
        "(r) => done(r.violations.map((v) => [v.id, v.impact, v.nodes.length, v.nodes[0].target.join(' ')])),"
        "(e) => done([['axe failed', String(e), 0, '']]));")
    AXE_FOUND.extend([where, *v] for v in found)


driver = browser()
wait = WebDriverWait(driver, 10)


def by_testid(name, within=None):
    return (within or driver).find_element(By.CSS_SELECTOR, f"[data-testid='{name}']")


def all_testid(name, within=None):
    return (within or driver).find_elements(By.CSS_SELECTOR, f"[data-testid='{name}']")


def row(key, env):
    return driver.find_element(
        By.CSS_SELECTOR, f"tr[data-testid='secret-row'][data-key='{key}'][data-env='{env}']")


def rows():
    """(key, env) of every listed row, read in one go (the list may be re-rendered)."""
    return [tuple(pair) for pair in driver.execute_script(
        "return [...document.querySelectorAll(\"[data-testid='secret-row']\")]"
        ".map((r) => [r.dataset.key, r.dataset.env])")]


def until(condition, what, timeout=10):
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=(
            StaleElementReferenceException, NoSuchElementException)).until(lambda _: condition())
    except TimeoutException:
        raise AssertionError(f"timed out waiting for: {what} (the page's error: {error_text()!r})") from None


def shot(name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def sign_in(token):
    field = by_testid("token")
    field.clear()
    field.send_keys(token)
    by_testid("sign-in").click()


def sign_out():
    by_testid("sign-out").click()
    until(lambda: by_testid("token").is_displayed(), "the sign-in form after sign out")


def error_text():
    box = by_testid("error")
    return box.text if box.is_displayed() else ""


def filter_env(env):
    field = driver.find_element(By.ID, "f-env")
    field.clear()
    field.send_keys(env)
    field.send_keys(Keys.ENTER)


def step(name):
    print(f"console: {name}", flush=True)


try:
    driver.get(f"{BASE}/_/")
    shot("sign-in")
    axe("sign-in")

    step("a wrong token shows an error and signs nobody in")
    sign_in("sr.000000000000.not-a-real-token")
    until(lambda: "not valid" in error_text(), "the wrong-token error")
    assert not driver.find_element(By.ID, "view-secrets").is_displayed()
    assert driver.execute_script("return sessionStorage.length") == 0

    step("sign in with the keyboard: the token field and Enter")
    field = by_testid("token")
    field.clear()
    field.send_keys(ADMIN)
    field.send_keys(Keys.ENTER)
    until(lambda: len(rows()) > 0, "the secrets list")
    assert driver.execute_script("return localStorage.length") == 0, "the token must never reach localStorage"
    assert driver.execute_script("return Object.values(sessionStorage).includes(arguments[0])", ADMIN)

    step("list: masked values, descriptions, versions")
    assert ("DB_URL", "prod") in rows(), rows()
    db = row("DB_URL", "prod")
    assert by_testid("masked", db).text == "********"
    assert not by_testid("value", db).is_displayed()
    assert "postgres://" not in driver.page_source, "no value before a reveal"

    step("a hostile description is shown as text and runs nothing")
    hostile = row("HOSTILE", "prod")
    assert by_testid("description", hostile).text == HOSTILE
    assert hostile.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return window.__pwned === undefined")

    step("search by key prefix")
    prefix = driver.find_element(By.ID, "f-prefix")
    prefix.send_keys("DB_")
    prefix.send_keys(Keys.ENTER)
    until(lambda: rows() and all(k.startswith("DB_") for k, _ in rows()), "only DB_ keys")
    prefix.clear()
    prefix.send_keys(Keys.ENTER)
    until(lambda: ("HOSTILE", "prod") in rows(), "the whole list again")
    shot("secrets")

    step("pagination")
    info = driver.find_element(By.ID, "page-info").text
    assert "Page 1 of 2" in info, info
    driver.find_element(By.ID, "next-page").click()
    until(lambda: "Page 2 of 2" in driver.find_element(By.ID, "page-info").text, "page 2")
    assert ("PAGED_29", "staging") in rows(), rows()
    driver.find_element(By.ID, "prev-page").click()
    until(lambda: "Page 1 of 2" in driver.find_element(By.ID, "page-info").text, "page 1")

    step("the env fallback: a global value shown for prod, marked")
    filter_env("prod")
    # Wait for the filtered list itself: the unfiltered one shows SHARED_URL too.
    until(lambda: ("SHARED_URL", "global") in rows() and all(env in ("prod", "global") for _, env in rows()),
          "the global value under prod, and only prod's rows")
    shared = row("SHARED_URL", "global")
    assert "fallback for prod" in shared.text
    axe("secrets")

    step("fallback rows are right beyond page one (computed by the server)")
    namespace = driver.find_element(By.ID, "f-namespace")
    namespace.clear()
    namespace.send_keys("team")
    filter_env("qa")
    until(lambda: "Page 1 of 2 (31 secrets)" in driver.find_element(By.ID, "page-info").text, "team/qa's 31 served rows")
    assert all(env == "qa" for _, env in rows()), rows()
    driver.find_element(By.ID, "next-page").click()
    until(lambda: "Page 2 of 2" in driver.find_element(By.ID, "page-info").text, "page 2 of team/qa")
    until(lambda: ("ZZ_ONLY_GLOBAL", "global") in rows(), "the one fallback row")
    second = rows()
    assert ("OVR_29", "qa") in second and not any(k.startswith("OVR_") and e == "global" for k, e in second), second
    assert "fallback for qa" in row("ZZ_ONLY_GLOBAL", "global").text
    driver.find_element(By.ID, "prev-page").click()
    namespace = driver.find_element(By.ID, "f-namespace")
    namespace.clear()
    namespace.send_keys("default")
    filter_env("prod")
    until(lambda: ("DB_URL", "prod") in rows() and all(env in ("prod", "global") for _, env in rows()), "back to default/prod")

    step("the address keeps the view and the filters: reload, then Back")
    until(lambda: "env=prod" in driver.current_url, "the filter in the address")
    driver.refresh()
    until(lambda: ("DB_URL", "prod") in rows() and all(env in ("prod", "global") for _, env in rows()),
          "prod's rows after a reload")
    assert driver.find_element(By.ID, "f-env").get_attribute("value") == "prod"
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='keys']").click()
    until(lambda: driver.current_url.endswith("#keys"), "the keys view in the address")
    driver.back()
    until(lambda: driver.find_element(By.ID, "view-secrets").is_displayed() and ("DB_URL", "prod") in rows(),
          "Back to the secrets, still filtered on prod")

    step("reveal is one click, audited, and hides again after 30 s")
    db = row("DB_URL", "prod")
    by_testid("reveal", db).click()
    until(lambda: by_testid("value", row("DB_URL", "prod")).text == "postgres://prod-db/app", "the revealed value")
    revealed_at = time.monotonic()
    by_testid("reveal", row("SHARED_URL", "global")).click()
    until(lambda: by_testid("value", row("SHARED_URL", "global")).text == "https://shared.example", "the fallback value")
    until(lambda: not by_testid("value", row("DB_URL", "prod")).is_displayed(), "the value hidden again", timeout=45)
    hidden_after = time.monotonic() - revealed_at
    assert 25 <= hidden_after <= 40, hidden_after
    assert by_testid("masked", row("DB_URL", "prod")).is_displayed()
    assert "postgres://prod-db/app" not in driver.page_source

    step("copy puts the value on the clipboard (an audited read too)")
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": BASE, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    by_testid("copy", row("DB_URL", "prod")).click()
    until(lambda: "Copied DB_URL" in driver.find_element(By.ID, "notice").text, "the copy notice")
    copied = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (e) => done('error: ' + e));")
    assert copied == "postgres://prod-db/app", copied
    assert not by_testid("value", row("DB_URL", "prod")).is_displayed(), "copying reveals nothing"

    step("a multi-line value keeps its lines when revealed")
    by_testid("reveal", row("PEM", "prod")).click()
    until(lambda: by_testid("value", row("PEM", "prod")).text == "-----BEGIN KEY-----\nline two\n-----END KEY-----",
          "the PEM's three lines")

    step("a revealed value is gone after switching views")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='keys']").click()
    until(lambda: "Active key version" in driver.find_element(By.ID, "keys-summary").text, "the keys view")
    assert "line two" not in driver.page_source, "a revealed value outlived its view"
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='secrets']").click()
    until(lambda: ("PEM", "prod") in rows(), "the secrets again")
    assert by_testid("masked", row("PEM", "prod")).is_displayed()

    step("create (a double-clicked Save writes one version)")
    by_testid("new-secret").click()
    by_testid("key-input").send_keys("NEW_KEY")
    env_input = by_testid("env-input")
    env_input.clear()
    env_input.send_keys("prod")
    by_testid("value-input").send_keys("created-in-browser")
    driver.find_element(By.ID, "description-input").send_keys("made by the console test")
    driver.find_element(By.ID, "ttl-input").send_keys("90d")
    driver.execute_script("const b = document.querySelector(\"[data-testid='save']\"); b.click(); b.click();")
    until(lambda: ("NEW_KEY", "prod") in rows(), "the new secret")
    created = row("NEW_KEY", "prod")
    assert "v1" in created.text and "expires" in created.text, created.text
    updated = created.find_element(By.CSS_SELECTOR, "td.when time")
    assert updated.get_attribute("title") and updated.get_attribute("datetime"), "the exact time on hover"
    assert updated.text in ("now",) or "second" in updated.text or "minute" in updated.text, updated.text

    step("edit: a new version")
    by_testid("edit", created).click()
    by_testid("value-input").send_keys("second-version")
    by_testid("save").click()
    until(lambda: "v2" in row("NEW_KEY", "prod").text, "version 2")

    step("history and rollback")
    by_testid("history", row("NEW_KEY", "prod")).click()
    until(lambda: len(all_testid("rollback")) == 1, "one version to roll back to")
    shot("history")
    axe("history")
    rollback = by_testid("rollback")
    assert rollback.get_attribute("data-version") == "1"
    assert driver.execute_script("const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;",
                                 driver.find_element(By.ID, "history-panel")), "the history opened off-screen"
    rollback.click()
    assert rollback.text == "Confirm roll back to v1", rollback.text
    assert "v2" in row("NEW_KEY", "prod").text, "one click rolled back"
    rollback.click()
    until(lambda: "v3" in row("NEW_KEY", "prod").text, "version 3 after the rollback")
    by_testid("reveal", row("NEW_KEY", "prod")).click()
    until(lambda: by_testid("value", row("NEW_KEY", "prod")).text == "created-in-browser", "the rolled-back value")

    step("delete asks once more, disarms after 5 s, then deletes")
    delete = by_testid("delete", row("NEW_KEY", "prod"))
    assert delete.get_attribute("aria-label") == "Delete NEW_KEY"
    delete.click()
    assert ("NEW_KEY", "prod") in rows()
    assert delete.text == "Confirm delete"
    until(lambda: delete.text == "Delete", "the confirmation disarmed", timeout=8)
    delete.click()
    assert delete.text == "Confirm delete"
    delete.click()
    until(lambda: ("NEW_KEY", "prod") not in rows(), "the deleted secret gone")

    step("audit view: events, filters, chain status")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='audit']").click()
    until(lambda: by_testid("chain-status").get_attribute("data-state") == "intact", "an intact chain")
    assert len(all_testid("audit-row")) > 0
    driver.find_element(By.ID, "a-actor").send_keys("token:admin")
    driver.find_element(By.ID, "a-action").send_keys("read")
    driver.find_element(By.ID, "a-key").send_keys("DB_URL")
    driver.find_element(By.ID, "a-key").send_keys(Keys.ENTER)
    until(lambda: [r.get_attribute("data-action") for r in all_testid("audit-row")] == ["read", "read"],
          "exactly the two reads of DB_URL (the reveal and the copy)")
    shot("audit")
    axe("audit")

    step("tokens: create shows the secret once, list, revoke")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='tokens']").click()
    until(lambda: len(all_testid("token-row")) > 0, "the token list")
    by_testid("token-name").send_keys("console-made")
    by_testid("token-scopes").send_keys("default/staging:list")
    by_testid("create-token").click()
    until(lambda: by_testid("token-secret").text.startswith("sr."), "the new token, once")
    made = by_testid("token-secret").text
    made_row = driver.find_element(By.CSS_SELECTOR, "[data-testid='token-row'][data-name='console-made']")
    # Tokens are identities: the accessor (never the token), the expiry and the uses left.
    accessor = made_row.find_element(By.CSS_SELECTOR, "[data-testid='token-accessor']").text
    assert len(accessor) == 24 and accessor not in made, accessor
    assert made_row.find_element(By.CSS_SELECTOR, "[data-testid='token-expires']").text == "never"
    assert made_row.find_element(By.CSS_SELECTOR, "[data-testid='token-uses']").text == "unlimited"
    assert "default/staging:list" in made_row.text
    assert made not in driver.find_element(By.ID, "token-rows").text, "the list never shows a secret"
    driver.find_element(By.ID, "token-dismiss").click()
    assert made not in driver.page_source
    shot("tokens")
    axe("tokens")
    revoke = by_testid("revoke", made_row)
    revoke.click()
    assert revoke.text == "Confirm revoke", revoke.text
    assert made_row.get_attribute("data-revoked") == "no", "one click revoked"
    revoke.click()
    until(lambda: driver.find_element(
        By.CSS_SELECTOR, "[data-testid='token-row'][data-name='console-made']").get_attribute("data-revoked") == "yes",
        "the token revoked")

    step("every admin view on a phone: cards, nothing wider than the screen")
    driver.set_window_size(390, 844)
    for view in ["tokens", "audit", "keys", "secrets"]:
        driver.find_element(By.CSS_SELECTOR, f"#nav [data-view='{view}']").click()
        until(lambda: driver.find_element(By.ID, f"view-{view}").is_displayed(), f"the {view} view")
        time.sleep(0.3)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the {view} view is {overflow}px wider than a phone"
    by_testid("history", row("DB_URL", "prod") if ("DB_URL", "prod") in rows() else all_testid("secret-row")[0]).click()
    until(lambda: len(all_testid("version-row")) > 0, "the history on a phone")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the history is {overflow}px wider than a phone"
    driver.find_element(By.ID, "history-close").click()
    driver.set_window_size(1400, 900)

    step("keys: rotation status")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='keys']").click()
    until(lambda: "Active key version 1" in driver.find_element(By.ID, "keys-summary").text, "the rotation status")
    shot("keys")
    axe("keys")

    step("sign out forgets the token; the revoked token no longer signs in")
    sign_out()
    assert driver.execute_script("return sessionStorage.length") == 0
    driver.refresh()
    until(lambda: by_testid("token").is_displayed(), "signed out after a reload")
    sign_in(made)
    until(lambda: "not valid" in error_text(), "the revoked token refused")

    step("a scoped token sees only its envs, and no admin pages")
    sign_in(SCOPED)
    until(lambda: len(rows()) > 0, "the scoped list")
    assert {env for _, env in rows()} == {"prod"}, rows()
    assert not driver.find_element(By.CSS_SELECTOR, "#nav [data-view='audit']").is_displayed()
    assert not driver.find_element(By.CSS_SELECTOR, "#nav [data-view='tokens']").is_displayed()
    by_testid("reveal", row("DB_URL", "prod")).click()
    until(lambda: by_testid("value", row("DB_URL", "prod")).text == "postgres://prod-db/app", "the scoped reveal")
    assert all_testid("edit") == [] and all_testid("delete") == [], "a read-only token gets no write buttons"
    assert not by_testid("new-secret").is_displayed()
    filter_env("staging")
    until(lambda: "lacks the `list` capability" in error_text(), "403 on an env outside the scope")
    assert rows() == [], "a refused listing left the previous env's rows"

    step("a token on a whole namespace starts there, with no error")
    sign_out()
    sign_in(NAMESPACE_WIDE)
    until(lambda: ("INVOICE_KEY", "prod") in rows(), "the payments namespace's rows")
    assert driver.find_element(By.ID, "f-namespace").get_attribute("value") == "payments"
    assert error_text() == "", error_text()
    sign_out()
    sign_in(SCOPED)
    until(lambda: len(rows()) > 0, "the scoped list")

    step("readable on a phone: nothing wider than the screen")
    filter_env("staging")
    until(lambda: "lacks the `list` capability" in error_text(), "the 403 again")
    filter_env("prod")
    until(lambda: len(rows()) > 0, "the list again")
    assert error_text() == "", "the last action's error outlived it"
    driver.set_window_size(390, 844)
    time.sleep(0.3)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    shot("phone")
    axe("phone")
    driver.set_window_size(1400, 900)

    step("axe-core: no accessibility violation of any impact on any view")
    assert AXE_FOUND == [], "\n".join(map(str, AXE_FOUND))

    step("no Content-Security-Policy violation and no script error on any page")
    problems = [entry["message"] for entry in driver.get_log("browser")
                if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
                and "status of 40" not in entry["message"]]
    assert problems == [], problems
    print("console: all steps passed", flush=True)
finally:
    driver.quit()
sys.exit(0)
