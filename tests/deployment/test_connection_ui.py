"""The ``tcia`` connection entered in Airflow's real UI, in a real (headless) browser, tested with its Test button.

A person's path, on every supported Airflow: open Add Connection, pick "The Cancer Imaging Archive (TCIA)",
see the labelled fields (the hidden standard ones absent), enter the server root, the port and the API key as
the README says, save, click the row's Test button, and see it succeed against an emulator that requires the key.
What the UI sent and what Airflow answered are read from the browser's own network log.

Airflow 3.0's UI has no Test button: there the same check goes through the REST API's test endpoint, with
the body the later UIs send.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from airflow_provider_tcia.hooks.connection_form import EXTRA_FIELDS, RELABELING
from tests.airflow_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_VERSION
from tests.deployment.browser import answers, chromium, wait_until
from tests.deployment.processes import Deployment, airflow_env, free_port, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

KEY = "ui-" + secrets.token_hex(12)
CONN_ID = "tcia_from_the_ui"
TYPE_NAME = "The Cancer Imaging Archive (TCIA)"
# The stored connection (from Airflow's database), read as the hook reads a connection's fields.
READ_BACK = """
import sys
from airflow.models import Connection
from airflow_provider_tcia.hooks.config import TciaConfig, parse_extras
c = Connection.get_connection_from_secrets(sys.argv[1])
config = TciaConfig.from_connection_fields(
    host=c.host, schema=c.schema, port=c.port, password=c.password, extra=parse_extras(c.get_extra())
)
print(config.base_url)
"""


@pytest.fixture
def ui(tmp_path) -> Iterator[Deployment]:
    """An Airflow whose UI allows the Test button: the api-server on 3.x, the webserver on 2.11."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    port = free_port()
    env = airflow_env(home, port, AIRFLOW__CORE__TEST_CONNECTION="Enabled")
    deployment = Deployment(home, tmp_path, port, env)
    deployment.cli("db", "migrate")
    if not AIRFLOW_V_3_0_PLUS:
        deployment.cli(
            *("users", "create", "--role", "Admin", "--username", "admin", "--password", "admin"),
            *("--email", "admin@example.org", "--firstname", "A", "--lastname", "Dmin"),
        )
    try:
        deployment.start("api-server" if AIRFLOW_V_3_0_PLUS else "webserver")
        wait_for(
            "Airflow's UI",
            lambda: deployment.get("/api/v2/monitor/health" if AIRFLOW_V_3_0_PLUS else "/health"),
            180,
            deployment,
        )
        yield deployment
    finally:
        deployment.stop()


def test_a_connection_entered_in_the_ui_passes_its_test_button(ui, tcia_emulator_factory):
    emulator = tcia_emulator_factory(api_key=KEY)
    with chromium() as browser:
        if AIRFLOW_V_3_0_PLUS:
            result = _enter_and_test_in_the_react_ui(browser, ui, emulator)
        else:
            result = _enter_and_test_in_the_flask_ui(browser, ui, emulator)
    assert result["status"] is True, result
    assert result["message"].startswith(f"Connected to http://127.0.0.1:{emulator.port} (legacy API v2)"), result
    assert KEY not in json.dumps(result)
    # The test reached the emulator with the key: the stored secret was used, not the UI's mask.
    assert any(r["endpoint"] == "getCollectionValues" and r["status"] == 200 for r in emulator.requests())

    # What the UI stored is what the hook reads: the emulator's root, from the host and the port apart.
    read = subprocess.run(
        [sys.executable, "-c", READ_BACK, CONN_ID], env=ui.env, capture_output=True, text=True, timeout=120
    )
    assert read.stdout.strip().splitlines()[-1:] == [f"http://127.0.0.1:{emulator.port}"], read


# --- Airflow 3's React UI ---------------------------------------------------------------------------------
def _enter_and_test_in_the_react_ui(browser, ui: Deployment, emulator) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base = f"http://127.0.0.1:{ui.port}"
    browser.get(base + "/")  # logs in (every user is an admin) and lands on the home page
    wait_until("the home page", lambda: "Dags" in browser.find_element(By.TAG_NAME, "body").text, driver=browser)
    browser.get(base + "/connections")
    browser.find_element(By.XPATH, "//button[contains(., 'Add Connection')]").click()
    browser.find_element(By.NAME, "connection_id").send_keys(CONN_ID)
    kind = browser.find_element(By.CSS_SELECTOR, "[role=dialog] input[role=combobox]")
    kind.send_keys("Cancer Imaging")
    wait_until("the TCIA type in the list", lambda: TYPE_NAME in browser.page_source, driver=browser)
    kind.send_keys(Keys.ENTER)

    dialog = browser.find_element(By.CSS_SELECTOR, "[role=dialog]")
    wait_until("the TCIA form", lambda: RELABELING["host"] in dialog.text, driver=browser)
    labels = dialog.text
    for label in (RELABELING["host"], RELABELING["password"], "Port"):
        assert label in labels, f"{label!r} missing from the form:\n{labels}"
    for hidden in ("Login", "Schema"):
        assert hidden not in labels.splitlines(), f"{hidden!r} should be hidden:\n{labels}"
    # As the README says: the server root, the port apart, the key.
    dialog.find_element(By.NAME, "host").send_keys("http://127.0.0.1")
    dialog.find_element(By.NAME, "port").send_keys(str(emulator.port))
    dialog.find_element(By.NAME, "password").send_keys(KEY)
    # The accordion shows one section at a time: the extras once the standard fields are filled.
    dialog.find_element(By.XPATH, ".//button[contains(., 'Extra Fields') and not(contains(., 'JSON'))]").click()
    wait_until("the extra fields", lambda: EXTRA_FIELDS[0].label in dialog.text, driver=browser)
    for extra in EXTRA_FIELDS:
        assert extra.label in dialog.text, f"extra field {extra.label!r} missing from the form:\n{dialog.text}"

    dialog.find_element(By.XPATH, ".//button[normalize-space()='Save']").click()
    saved = wait_until(
        "the connection to be saved",
        lambda: [
            a for a in answers(browser, "/api/v2/connections") if a["url"].endswith("/connections") and "answer" in a
        ],
        driver=browser,
    )
    assert saved[0]["status"] == 201, saved
    wait_until(
        "the connection in the list", lambda: CONN_ID in browser.find_element(By.TAG_NAME, "body").text, driver=browser
    )

    buttons = browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Test Connection']")
    if not buttons:
        # Airflow 3.0's UI has no Test button; its API's test endpoint, with the later UIs' body, stands in.
        assert AIRFLOW_VERSION < (3, 1), "the UI shows no Test button"
        return _test_through_the_api(ui, emulator)
    buttons[0].click()
    tested = _test_answer(browser)
    # What the person sees: the UI's toast with the hook's message (3.1+ show it; the icon turns green).
    wait_until(
        "the success message",
        lambda: f"Connected to http://127.0.0.1:{emulator.port}" in browser.find_element(By.TAG_NAME, "body").text,
        driver=browser,
    )
    assert "Failed" not in browser.find_element(By.TAG_NAME, "body").text
    return tested[0]["answer"]


def _test_through_the_api(ui: Deployment, emulator) -> dict:
    stored = ui.get(f"/api/v2/connections/{CONN_ID}")
    body = {k: stored[k] for k in ("connection_id", "conn_type", "host", "port", "extra")}
    body.update(password=KEY, login="", schema="", description="")  # 3.0 does not restore a masked secret
    request = urllib.request.Request(
        f"http://127.0.0.1:{ui.port}/api/v2/connections/test",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _test_answer(browser) -> list[dict]:
    """The Test button's request as the browser sent it, once Airflow has answered it (200)."""
    tested = wait_until(
        "the Test button's answer",
        lambda: [a for a in answers(browser, "/connections/test") if "answer" in a],
        driver=browser,
    )
    assert tested[0]["status"] == 200, tested
    return tested


# --- Airflow 2.11's Flask UI ------------------------------------------------------------------------------
def _enter_and_test_in_the_flask_ui(browser, ui: Deployment, emulator) -> dict:
    from selenium.webdriver.common.by import By

    base = f"http://127.0.0.1:{ui.port}"
    browser.get(base + "/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
    wait_until("the login", lambda: "/login" not in browser.current_url, driver=browser)

    browser.get(base + "/connection/add")
    browser.find_element(By.ID, "conn_id").send_keys(CONN_ID)
    # The type is a select2 dropdown over a plain <select>: choose the option as the dropdown does.
    browser.execute_script("$('#conn_type').val('tcia').trigger('change');")
    form = browser.find_element(By.ID, "model_form")
    wait_until("the TCIA form", lambda: RELABELING["host"] in form.text, driver=browser)
    for label in (RELABELING["host"], RELABELING["password"], "Port", *(f.label for f in EXTRA_FIELDS)):
        assert label in form.text, f"{label!r} missing from the form:\n{form.text}"
    for hidden in ("Login", "Schema"):
        assert hidden not in form.text.splitlines(), f"{hidden!r} should be hidden:\n{form.text}"

    browser.find_element(By.ID, "host").send_keys("http://127.0.0.1")
    browser.find_element(By.ID, "port").send_keys(str(emulator.port))
    browser.find_element(By.ID, "password").send_keys(KEY)
    browser.find_element(By.ID, "test-connection").click()
    tested = _test_answer(browser)
    wait_until(
        "the success message",
        lambda: "Connected to" in browser.find_element(By.TAG_NAME, "body").text,
        driver=browser,
    )
    form.find_element(
        By.XPATH, ".//*[(self::button or self::input) and (normalize-space()='Save' or @value='Save')]"
    ).click()
    wait_until("the save", lambda: "/connection/add" not in browser.current_url, driver=browser)
    browser.get(base + "/connection/list/")
    wait_until("the connection list", lambda: CONN_ID in browser.find_element(By.TAG_NAME, "body").text, driver=browser)
    return tested[0]["answer"]
