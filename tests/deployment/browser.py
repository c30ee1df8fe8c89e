"""A headless Chromium driven by Selenium, for the tests that use Airflow's UI as a person does.

Chromium and its driver come from Debian's packages (``make system-deps`` installs them); a missing one fails
the test with what to install, never skips it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

INSTALL = "install Debian's chromium and chromium-driver packages (as root: make system-deps)"


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{' or '.join(names)} not found: {INSTALL}")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium whose network requests can be read back (see :func:`answers`); always quit."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: install the project's dev extra (make install)")

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1400"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_binary("chromedriver")))
    try:
        driver.implicitly_wait(10)
        yield driver
    finally:
        driver.quit()


def answers(driver: Any, url_part: str, method: str = "POST") -> list[dict[str, Any]]:
    """The page's requests so far whose URL contains ``url_part``, each with its status and JSON answer
    (read from Chromium's own network log: what the UI sent and what the server told it)."""
    # Chromium hands each log entry out once: keep them all on the driver, for the next call.
    log = driver.__dict__.setdefault("_network_log", [])
    log += [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    sent: dict[str, dict[str, Any]] = {}
    for message in log:
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            request = params["request"]
            if url_part in request["url"] and request["method"] == method:
                sent[params["requestId"]] = {"url": request["url"], "body": request.get("postData")}
        elif message["method"] == "Network.loadingFinished" and params["requestId"] in sent:
            sent[params["requestId"]]["finished"] = True
        elif message["method"] == "Network.responseReceived" and params["requestId"] in sent:
            sent[params["requestId"]]["status"] = params["response"]["status"]
    bodies = driver.__dict__.setdefault("_network_bodies", {})
    for request_id, request in sent.items():
        if request.get("finished"):
            if request_id not in bodies:
                bodies[request_id] = driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": request_id})[
                    "body"
                ]
            body = bodies[request_id]
            request["answer"] = json.loads(body) if body.startswith(("{", "[")) else body
    return list(sent.values())


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30, driver: Any = None) -> Any:
    """Poll ``check`` (bounded, sleeping) until it returns something truthy; on timeout fail with the page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    page = driver.find_element("tag name", "body").text[-2000:] if driver is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; the page shows:\n{page}")
