"""The explorer page in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium): moving the seed, truncation and style-mixing controls changes the image, the
layer view draws its overlay, a bad input shows the error in the page, and the server answers on
127.0.0.1 only."""
from __future__ import annotations

import base64
import io
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

selenium = pytest.importorskip("selenium")
uvicorn = pytest.importorskip("uvicorn")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver import Chrome, ChromeOptions  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from cli_run import free_port  # noqa: E402
from lightning_stylegan.explore.render import network  # noqa: E402
from lightning_stylegan.explore.server import Explorer, app  # noqa: E402
from lightning_stylegan.network_files import load_generator  # noqa: E402
from tiny_networks import tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    G = load_generator(tiny_checkpoint(tmp_path_factory.mktemp("explore") / "tiny.ckpt"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(Explorer([network("tiny", G)])), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(url):
    options = ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.get(url)
    yield driver
    driver.quit()


def shown(browser, css: str = "img.image", previous: str | None = None) -> str:
    """The src of the element once it exists (and differs from ``previous``)."""
    def ready(driver):  # read in the page: the panels are redrawn on every answer
        src = driver.execute_script("const el = document.querySelector(arguments[0]); return el && el.src", css)
        return src if src and src != previous else None
    return WebDriverWait(browser, 20).until(ready)


def pixels(src: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))).astype(np.int16)


def set_value(browser, element_id: str, value) -> None:
    browser.execute_script("const el = document.getElementById(arguments[0]);"
                           "if (el.type === 'checkbox') el.checked = arguments[1]; else el.value = arguments[1];"
                           "el.dispatchEvent(new Event('input'));", element_id, value)


def test_the_controls_change_the_image(browser):
    before = shown(browser)
    for element_id, value in (("seed", 5), ("psi", 0.3), ("mix-on", True)):
        set_value(browser, element_id, value)
        after = shown(browser, previous=before)
        assert np.abs(pixels(after) - pixels(before)).mean() > 0.5, element_id
        before = after


def test_the_layer_view_draws_its_overlay(browser):
    set_value(browser, "layer-on", True)
    heat = pixels(shown(browser, "img.magnitude"))
    assert heat.shape[-1] == 3 and browser.find_elements(By.CSS_SELECTOR, "img.feature-maps")
    set_value(browser, "layer-on", False)


def test_a_bad_input_shows_the_error_in_the_page(browser):
    set_value(browser, "seed", -1)
    WebDriverWait(browser, 20).until(lambda d: "seed must be" in d.find_element(By.ID, "error").text)
    set_value(browser, "seed", 0)
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "error").text == "")


def test_the_server_answers_on_127_0_0_1_only(url):
    port = int(url.rsplit(":", 1)[1].strip("/"))
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # the address of the default route, if any
        try:
            probe.connect(("10.255.255.255", 1))  # UDP: nothing is sent
            addresses.add(probe.getsockname()[0])
        except OSError:
            pass
    others = [a for a in addresses if not a.startswith("127.") and a != "0.0.0.0"]
    if not others:
        pytest.skip("this machine has no address but the loopback")
    for address in others:
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass
