"""End to end in headless Chromium against a live dockyard with htpasswd auth: anonymous view,
log in, search, open an image, copy the pull command, delete a tag. Screenshots go to
test-artifacts/ui/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.auth.htpasswd import HtpasswdFile
from tests.auth.live import AuthRegistry
from tests.web.browser import ARTIFACTS, chromium
from tests.web.seed import seed

pytestmark = pytest.mark.live
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthRegistry, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("web")
    users = HtpasswdFile(workdir / "htpasswd")
    users.set_password("alice", PASSWORD, cost=4, create=True)
    users.set_password("bob", PASSWORD, cost=4, create=True)
    config = {
        "auth": {
            "htpasswd": {"realm": "dockyard", "path": str(workdir / "htpasswd")},
            "access": {
                "admins": ["alice"],
                "rules": [
                    {"repositories": ["public/**"], "actions": ["pull"], "anonymous": True},
                    {"repositories": ["**"], "actions": ["pull"], "users": ["bob"]},
                ],
            },
            "robots": {"path": str(workdir / "robots.json")},
        },
        "storage": {"filesystem": {"fsync": False}},
    }
    live = AuthRegistry(workdir / "registry", config=config, workers=2)
    live.start()
    try:
        with httpx.Client(base_url=live.url, auth=("alice", PASSWORD), timeout=30) as client:
            digests = seed(client)
        yield live, digests
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        yield driver


def shot(driver: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver: Any, css: str, timeout: float = 10) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def navigate(driver: Any, action: Callable[[], object], css: str, timeout: float = 10) -> Any:
    """Run `action`, which loads a new page, and wait for the old page to go before waiting for `css`.

    Waiting for `css` alone races with the navigation when the old page also matches it (the
    repository list and the search results both have a `table`): the wait returns an element of the
    old page at once, and the next read hits it as the new page replaces it
    (StaleElementReferenceException). The old document's root going stale is the navigation itself.
    Chromium reports a node of the replaced document either as stale or, while it swaps documents,
    as an "unknown error" that the node "does not belong to the document"; both mean the old page
    is gone (selenium's ``staleness_of`` knows only the first, and a CI run failed on the second).
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")

    def old_page_gone(_: Any) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False

    action()
    WebDriverWait(driver, timeout).until(old_page_gone)
    return wait_for(driver, css, timeout)


def texts(driver: Any, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def test_anonymous_sees_public_repositories_only(registry: Any, browser: Any) -> None:
    live, _ = registry
    browser.get(live.url + "/")
    wait_for(browser, "h1")
    assert texts(browser, "table tbody th a") == ["public/hello"]
    shot(browser, "01-anonymous")
    browser.get(live.url + "/ui/repository?name=acme/web")  # private: sign in first
    wait_for(browser, "#username")
    assert "/ui/login" in browser.current_url


def test_log_in_search_open_copy_and_delete(registry: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    live, digests = registry
    # Log in (the login page from the previous test remembers where we wanted to go).
    browser.get(live.url + "/ui/login?next=/")
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys("wrong")
    submit = browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]")
    assert "Wrong username" in navigate(browser, submit.click, "[role=alert]").text
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    shot(browser, "02-login")
    submit = browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]")
    navigate(browser, submit.click, ".user")
    assert browser.find_element(By.CSS_SELECTOR, ".user").text == "alice"
    assert len(texts(browser, "table tbody th a")) == 7
    shot(browser, "03-repositories")

    # Search.
    search = browser.find_element(By.ID, "q")
    navigate(browser, lambda: search.send_keys("acme", Keys.ENTER), "table")
    assert texts(browser, "table tbody th a") == ["acme/api", "acme/web", "acme/worker"]
    shot(browser, "04-search")

    # The repository page: tags with digests, sizes, platforms, times.
    navigate(browser, browser.find_element(By.LINK_TEXT, "acme/web").click, "table.tags")
    tags = texts(browser, "table.tags tbody th")
    assert set(tags) == {"1.4.2", "1.4.1", "1.4.0", "1.3.9", "latest"}
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-tag='1.4.2']")
    assert "linux/amd64" in row.text and "linux/arm64/v8" in row.text and "linux/arm/v7" in row.text
    shot(browser, "05-repository")

    # Copy the pull command of 1.4.2.
    field = row.find_element(By.CSS_SELECTOR, ".copy input")
    expected = f"docker pull {live.host}/acme/web:1.4.2"
    assert field.get_attribute("value") == expected
    row.find_element(By.CSS_SELECTOR, "button[data-copy]").click()
    wait_for(browser, "#status.show")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-last-copied") == expected
    assert "Copied" in browser.find_element(By.ID, "status").text
    shot(browser, "06-copied")

    # Open the image (an index): platforms and referrers; then one platform's details.
    navigate(browser, row.find_element(By.LINK_TEXT, "1.4.2").click, "#platforms-h")
    assert digests["web"] in browser.find_element(By.ID, "digest").get_attribute("value")
    kinds = texts(browser, "section[aria-labelledby=referrers-h] tbody th")
    assert sorted(kinds) == ["SBOM", "Signature"]
    shot(browser, "07-image-index")
    platform = browser.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=platforms-h] tbody a")[1]
    navigate(browser, platform.click, "#img-layers")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "/usr/local/bin/server" in page and "APP_VERSION=1.4.2" in page and "maintainer" in page
    assert "COPY ./server /usr/local/bin/server" in page
    shot(browser, "08-image")

    # Delete tag 1.4.0, confirming in the dialog.
    browser.get(live.url + "/ui/repository?name=acme/web&sort=name")
    row = wait_for(browser, "tr[data-tag='1.4.0']")
    row.find_element(By.CSS_SELECTOR, "button.btn-danger-ghost").click()
    wait_for(browser, "dialog#confirm[open]")
    assert "Remove tag 1.4.0 from acme/web" in browser.find_element(By.ID, "confirm-text").text
    shot(browser, "09-confirm-delete")
    confirm = browser.find_element(By.ID, "confirm-ok")
    assert "Deleted tag 1.4.0" in navigate(browser, confirm.click, ".notice").text
    assert "1.4.0" not in texts(browser, "table.tags tbody th")
    shot(browser, "10-deleted")
    tags_now = httpx.get(f"{live.url}/v2/acme/web/tags/list", auth=("alice", PASSWORD)).json()["tags"]
    assert "1.4.0" not in tags_now and "1.4.1" in tags_now

    # Storage usage with its chart.
    navigate(browser, browser.find_element(By.LINK_TEXT, "Storage").click, ".chart svg")
    assert "acme/web" in browser.find_element(By.CSS_SELECTOR, "table").text
    shot(browser, "11-usage")


def test_keyboard_and_labels(registry: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    live, _ = registry
    browser.get(live.url + "/")
    wait_for(browser, "h1")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content"
    for element in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
        element_id = element.get_attribute("id")
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{element_id}']"), element_id


def test_reader_cannot_delete(registry: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    live, _ = registry
    browser.delete_all_cookies()
    browser.get(live.url + "/ui/login?next=/ui/repository%3Fname%3Dacme/api")
    browser.find_element(By.ID, "username").send_keys("bob")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit = browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]")
    navigate(browser, submit.click, "table.tags")
    assert browser.find_elements(By.CSS_SELECTOR, "button.btn-danger-ghost") == []
