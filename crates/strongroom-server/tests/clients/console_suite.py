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
    """The error in the one message area (`notice`), or ""."""
    found = all_testid("error", driver.find_element(By.ID, "notice"))
    return found[0].text if found and found[0].is_displayed() else ""


def notice_text():
    box = by_testid("notice")
    return box.text if box.is_displayed() else ""


def cell(key, env):
    return driver.find_element(
        By.CSS_SELECTOR, f"[data-testid='grid-cell'][data-key='{key}'][data-env='{env}']")


def cells():
    """{(key, env): state} of every grid cell, read in one go."""
    return {(k, e): s for k, e, s in driver.execute_script(
        "return [...document.querySelectorAll(\"[data-testid='grid-cell']\")]"
        ".map((c) => [c.dataset.key, c.dataset.env, c.dataset.state])")}


def detail():
    return by_testid("detail")


def detail_open():
    return detail().is_displayed()


def confirm(answer=True):
    """The second step of a destructive action: `confirm-yes`, or `cancel`."""
    until(lambda: by_testid("confirm").is_displayed(), "the confirmation")
    by_testid("confirm-yes" if answer else "cancel").click()
    until(lambda: not by_testid("confirm").is_displayed(), "the confirmation closed")


def no_overflow(where):
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{where} is {overflow}px wider than a phone"


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
    assert "not valid" in notice_text(), "the error is in the one message area"
    assert not driver.find_element(By.ID, "view-secrets").is_displayed()
    assert driver.execute_script("return sessionStorage.length") == 0

    step("sign in with the keyboard: the token field and Enter; #/secrets opens on the grid")
    field = by_testid("token")
    field.clear()
    field.send_keys(ADMIN)
    field.send_keys(Keys.ENTER)
    until(lambda: len(cells()) > 0, "the key x env grid")
    assert error_text() == "", "the wrong token's error outlived the sign-in"
    assert driver.current_url.endswith("#/secrets"), driver.current_url
    assert by_testid("grid").is_displayed()
    assert driver.execute_script("return localStorage.length") == 0, "the token must never reach localStorage"
    assert driver.execute_script("return Object.values(sessionStorage).includes(arguments[0])", ADMIN)

    step("the grid: one row per key, one column per env, each cell's state")
    grid = cells()
    assert grid[("DB_URL", "prod")] == "set", grid
    assert grid[("DB_URL", "global")] == "missing", grid
    assert grid[("SHARED_URL", "prod")] == "fallback", grid
    assert grid[("SHARED_URL", "global")] == "set", grid
    assert grid[("OLD", "prod")] == "expired", grid
    assert grid[("PAGED_05", "staging")] == "set" and grid[("PAGED_05", "prod")] == "missing", grid
    assert {env for _, env in grid} == {"global", "prod", "staging"}, grid
    assert "postgres://" not in driver.page_source, "no value in the grid"
    assert "fallback" in cell("SHARED_URL", "prod").text and "global" in cell("SHARED_URL", "prod").text
    shot("grid")
    axe("grid")

    step("a cell opens the detail panel, which takes focus; reveal is audited")
    cell("DB_URL", "prod").click()
    until(lambda: detail_open() and len(all_testid("version-row", detail())) == 1, "the detail of DB_URL in prod")
    assert driver.execute_script("return document.getElementById('detail').contains(document.activeElement)"), \
        "the panel did not take focus"
    assert "the app's database" in detail().text
    by_testid("reveal", detail()).click()
    until(lambda: by_testid("value", detail()).text == "postgres://prod-db/app", "the revealed value in the panel")
    assert by_testid("history", detail()).is_displayed()
    until(lambda: len(all_testid("detail-audit-row", detail())) > 0, "the secret's own audit events")
    assert "create" in [r.get_attribute("data-action") for r in all_testid("detail-audit-row", detail())]

    step("custom metadata and settings, saved from the panel")
    labels = driver.find_element(By.ID, "detail-custom")
    labels.clear()
    labels.send_keys("owner=payments-team\nticket=OPS-12")
    versions = driver.find_element(By.ID, "detail-max-versions")
    versions.clear()
    versions.send_keys("5")
    by_testid("settings-save", detail()).click()
    until(lambda: "Saved the settings of DB_URL" in notice_text(), "the settings saved")
    until(lambda: driver.find_element(By.ID, "detail-custom").get_attribute("value") == "owner=payments-team\nticket=OPS-12",
          "the labels read back")
    assert driver.find_element(By.ID, "detail-max-versions").get_attribute("value") == "5"
    shot("detail")
    axe("detail")
    labels = driver.find_element(By.ID, "detail-custom")
    labels.clear()
    labels.send_keys("no equals sign")
    by_testid("settings-save", detail()).click()
    until(lambda: "not name=value" in error_text(), "a malformed label refused in the page")

    step("Escape closes the panel and removes the revealed value")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    until(lambda: not detail_open(), "the panel closed")
    assert "postgres://prod-db/app" not in driver.page_source, "a revealed value outlived its panel"

    step("a fallback cell: the panel shows the serving env's secret, read through the column's env")
    cell("SHARED_URL", "prod").click()
    until(lambda: detail_open() and "from global" in driver.find_element(By.ID, "detail-title").text, "the fallback's detail")
    assert "prod has no value of its own" in detail().text
    by_testid("reveal", detail()).click()
    until(lambda: by_testid("value", detail()).text == "https://shared.example", "the fallback value")
    driver.find_element(By.ID, "detail-close").click()
    until(lambda: not detail_open(), "the panel closed")

    step("search by key prefix, in the grid")
    prefix = driver.find_element(By.ID, "f-prefix")
    prefix.send_keys("DB_")
    prefix.send_keys(Keys.ENTER)
    until(lambda: cells() and all(k.startswith("DB_") for k, _ in cells()), "only DB_ keys")
    assert "prefix=DB_" in driver.current_url
    prefix = driver.find_element(By.ID, "f-prefix")
    prefix.clear()
    prefix.send_keys(Keys.ENTER)
    until(lambda: ("HOSTILE", "prod") in cells(), "every key again")

    step("a column's env opens its list: what the env serves, fallbacks marked")
    driver.find_element(By.CSS_SELECTOR, "[data-testid='grid-env'][data-env='prod']").click()
    until(lambda: ("SHARED_URL", "global") in rows() and all(env in ("prod", "global") for _, env in rows()),
          "the global value under prod, and only prod's rows")
    assert "env=prod" in driver.current_url
    assert "fallback for prod" in row("SHARED_URL", "global").text
    db = row("DB_URL", "prod")
    assert by_testid("masked", db).text == "********"
    assert not by_testid("value", db).is_displayed()

    step("a hostile description is shown as text and runs nothing")
    hostile = row("HOSTILE", "prod")
    assert by_testid("description", hostile).text == HOSTILE
    assert hostile.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return window.__pwned === undefined")
    shot("secrets")
    axe("secrets")

    step("fallback rows are right beyond page one (computed by the server)")
    namespace = driver.find_element(By.ID, "f-namespace")
    namespace.clear()
    namespace.send_keys("team")
    filter_env("qa")
    until(lambda: "Page 1 of 2 (31 secrets)" in driver.find_element(By.ID, "page-info").text, "team/qa's 31 served rows")
    assert all(env == "qa" for _, env in rows()), rows()
    by_testid("next-page").click()
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
    until(lambda: "#/secrets?env=prod" in driver.current_url, "the filter in the address")
    driver.refresh()
    until(lambda: ("DB_URL", "prod") in rows() and all(env in ("prod", "global") for _, env in rows()),
          "prod's rows after a reload")
    assert driver.find_element(By.ID, "f-env").get_attribute("value") == "prod"
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='keys']").click()
    until(lambda: driver.current_url.endswith("#/keys"), "the keys view in the address")
    driver.back()
    until(lambda: driver.find_element(By.ID, "view-secrets").is_displayed() and ("DB_URL", "prod") in rows(),
          "Back to the secrets, still filtered on prod")
    driver.find_element(By.ID, "all-envs").click()
    until(lambda: ("HOSTILE", "prod") in cells() and driver.current_url.endswith("#/secrets"), "every env: the grid")
    driver.back()
    until(lambda: ("DB_URL", "prod") in rows() and by_testid("grid").is_displayed() is False, "Back: prod's list")

    step("reveal in the list is one click, audited, and hides again after 30 s")
    by_testid("reveal", row("DB_URL", "prod")).click()
    until(lambda: by_testid("value", row("DB_URL", "prod")).text == "postgres://prod-db/app", "the revealed value")
    revealed_at = time.monotonic()
    until(lambda: not by_testid("value", row("DB_URL", "prod")).is_displayed(), "the value hidden again", timeout=45)
    hidden_after = time.monotonic() - revealed_at
    assert 25 <= hidden_after <= 40, hidden_after
    assert by_testid("masked", row("DB_URL", "prod")).is_displayed()
    assert "postgres://prod-db/app" not in driver.page_source

    step("copy puts the value on the clipboard (an audited read too)")
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": BASE, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    by_testid("copy", row("DB_URL", "prod")).click()
    until(lambda: "Copied DB_URL" in notice_text(), "the copy notice")
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
    assert "Saved NEW_KEY in prod" in notice_text()
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

    step("history and rollback in the panel: the confirmation, cancelled by Escape, then confirmed")
    by_testid("history", row("NEW_KEY", "prod")).click()
    until(lambda: detail_open() and len(all_testid("rollback", detail())) == 1, "one version to roll back to")
    shot("history")
    rollback = by_testid("rollback", detail())
    assert rollback.get_attribute("data-version") == "1"
    rollback.click()
    until(lambda: by_testid("confirm").is_displayed(), "the rollback's confirmation")
    assert "version 1" in by_testid("confirm").text
    axe("confirm")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    until(lambda: not by_testid("confirm").is_displayed(), "Escape cancelled")
    assert detail_open(), "Escape on the confirmation closed the panel too"
    assert "v2" in row("NEW_KEY", "prod").text, "a cancelled rollback rolled back"
    by_testid("rollback", detail()).click()
    confirm()
    until(lambda: "Rolled NEW_KEY back to version 1" in notice_text(), "the rollback notice")
    until(lambda: len(all_testid("version-row", detail())) == 3, "version 3 in the history")
    by_testid("reveal", detail()).click()
    until(lambda: by_testid("value", detail()).text == "created-in-browser", "the rolled-back value")
    driver.find_element(By.ID, "detail-close").click()
    until(lambda: "v3" in row("NEW_KEY", "prod").text, "version 3 in the list")

    step("soft delete, undelete and destroy single versions; the grid says deleted")
    driver.find_element(By.ID, "all-envs").click()
    until(lambda: ("ROTATED", "prod") in cells(), "the grid")
    cell("ROTATED", "prod").click()
    until(lambda: detail_open() and len(all_testid("version-row", detail())) == 2, "ROTATED's two versions")
    version = lambda n: driver.find_element(By.CSS_SELECTOR, f"#detail [data-testid='version-row'][data-version='{n}']")
    by_testid("delete-version", version(2)).click()
    confirm()
    until(lambda: version(2).get_attribute("data-state") == "deleted", "version 2 soft-deleted")
    until(lambda: cells().get(("ROTATED", "prod")) == "deleted", "the grid cell deleted")
    by_testid("undelete", version(2)).click()
    until(lambda: version(2).get_attribute("data-state") == "current", "version 2 back")
    by_testid("destroy", version(1)).click()
    confirm(False)
    assert version(1).get_attribute("data-state") == "kept", "a cancelled destroy destroyed"
    by_testid("destroy", version(1)).click()
    confirm()
    until(lambda: version(1).get_attribute("data-state") == "destroyed", "version 1 destroyed")
    driver.find_element(By.ID, "detail-close").click()
    until(lambda: not detail_open(), "the panel closed")

    step("a missing cell adds the key to its env")
    cell("DB_URL", "staging").click()
    until(lambda: driver.find_element(By.ID, "editor").is_displayed(), "the editor")
    assert by_testid("key-input").get_attribute("value") == "DB_URL"
    assert by_testid("env-input").get_attribute("value") == "staging"
    driver.find_element(By.ID, "editor-cancel").click()

    step("delete asks first: cancel keeps it, confirm deletes")
    filter_env("prod")
    until(lambda: ("NEW_KEY", "prod") in rows(), "prod's list")
    delete = by_testid("delete", row("NEW_KEY", "prod"))
    assert delete.get_attribute("aria-label") == "Delete NEW_KEY"
    delete.click()
    confirm(False)
    assert ("NEW_KEY", "prod") in rows()
    by_testid("delete", row("NEW_KEY", "prod")).click()
    driver.execute_script("const b = document.querySelector(\"[data-testid='confirm-yes']\"); b.click(); b.click();")
    until(lambda: ("NEW_KEY", "prod") not in rows(), "the deleted secret gone")
    assert "Deleted NEW_KEY from prod" in notice_text()

    step("audit view: events, filters in the address, chain status")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='audit']").click()
    until(lambda: by_testid("chain-status").get_attribute("data-state") == "intact", "an intact chain")
    assert len(all_testid("audit-row")) > 0
    driver.find_element(By.ID, "a-actor").send_keys("token:admin")
    driver.find_element(By.ID, "a-action").send_keys("read")
    driver.find_element(By.ID, "a-key").send_keys("DB_URL")
    driver.find_element(By.ID, "a-key").send_keys(Keys.ENTER)
    until(lambda: [r.get_attribute("data-action") for r in all_testid("audit-row")] == ["read", "read", "read"],
          "exactly the three reads of DB_URL (the panel's reveal, the list's reveal and the copy)")
    assert "#/audit?actor=token%3Aadmin&action=read&key=DB_URL" in driver.current_url, driver.current_url
    driver.refresh()
    until(lambda: len(all_testid("audit-row")) == 3 and driver.find_element(By.ID, "a-key").get_attribute("value") == "DB_URL",
          "the filtered audit after a reload")
    shot("audit")
    axe("audit")

    step("tokens: create shows the secret once, list, revoke after confirming")
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view='tokens']").click()
    until(lambda: len(all_testid("token-row")) > 0, "the token list")
    methods = {m.get_attribute("data-path"): m.text for m in all_testid("auth-method")}
    assert set(methods) == {"token/", "approle/"}, methods
    assert "CI machines" in methods["approle/"], methods
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
    by_testid("revoke", made_row).click()
    confirm(False)
    assert made_row.get_attribute("data-revoked") == "no", "a cancelled revoke revoked"
    by_testid("revoke", made_row).click()
    assert "stops working" in by_testid("confirm").text
    confirm()
    until(lambda: driver.find_element(
        By.CSS_SELECTOR, "[data-testid='token-row'][data-name='console-made']").get_attribute("data-revoked") == "yes",
        "the token revoked")

    step("every view on a phone: cards, nothing wider than the screen")
    driver.set_window_size(390, 844)
    for view in ["tokens", "audit", "keys", "secrets"]:
        driver.find_element(By.CSS_SELECTOR, f"#nav [data-view='{view}']").click()
        until(lambda: driver.find_element(By.ID, f"view-{view}").is_displayed(), f"the {view} view")
        time.sleep(0.3)
        no_overflow(f"the {view} view")
    driver.find_element(By.ID, "all-envs").click()
    until(lambda: ("DB_URL", "prod") in cells(), "the grid on a phone")
    time.sleep(0.3)
    no_overflow("the grid")
    shot("phone-grid")
    cell("DB_URL", "prod").click()
    until(lambda: detail_open() and len(all_testid("version-row", detail())) > 0, "the panel on a phone")
    no_overflow("the detail panel")
    axe("phone-detail")
    driver.find_element(By.ID, "detail-close").click()
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
    until(lambda: len(cells()) > 0, "the scoped grid")
    assert {env for _, env in cells()} == {"prod"}, cells()
    assert ("SHARED_URL", "prod") not in cells(), "a fallback from an env the token may not list"
    assert not driver.find_element(By.CSS_SELECTOR, "#nav [data-view='audit']").is_displayed()
    assert not driver.find_element(By.CSS_SELECTOR, "#nav [data-view='tokens']").is_displayed()
    filter_env("prod")
    until(lambda: ("DB_URL", "prod") in rows(), "the scoped list")
    by_testid("reveal", row("DB_URL", "prod")).click()
    until(lambda: by_testid("value", row("DB_URL", "prod")).text == "postgres://prod-db/app", "the scoped reveal")
    assert all_testid("edit") == [] and all_testid("delete") == [], "a read-only token gets no write buttons"
    assert not by_testid("new-secret").is_displayed()
    by_testid("history", row("DB_URL", "prod")).click()
    until(lambda: detail_open() and len(all_testid("version-row", detail())) > 0, "the scoped panel")
    assert all_testid("rollback", detail()) == [] and all_testid("destroy", detail()) == []
    assert "superuser" in by_testid("detail-audit", detail()).text
    driver.find_element(By.ID, "detail-close").click()
    filter_env("staging")
    until(lambda: "lacks the `list` capability" in error_text(), "403 on an env outside the scope")
    assert rows() == [], "a refused listing left the previous env's rows"

    step("a token on a whole namespace starts there, with no error")
    sign_out()
    sign_in(NAMESPACE_WIDE)
    until(lambda: ("INVOICE_KEY", "prod") in cells(), "the payments namespace's grid")
    assert driver.find_element(By.ID, "f-namespace").get_attribute("value") == "payments"
    assert error_text() == "", error_text()
    sign_out()
    sign_in(SCOPED)
    until(lambda: len(cells()) > 0, "the scoped grid")

    step("readable on a phone: nothing wider than the screen")
    filter_env("staging")
    until(lambda: "lacks the `list` capability" in error_text(), "the 403 again")
    filter_env("prod")
    until(lambda: len(rows()) > 0, "the list again")
    assert error_text() == "", "the last action's error outlived it"
    driver.set_window_size(390, 844)
    time.sleep(0.3)
    no_overflow("the list")
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
