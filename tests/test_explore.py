"""The explorer's server (``lightning-stylegan explore``) through its HTTP API, in process with
Starlette's test client: every control changes the image it should, the layer view draws the
artifact region's outline, bad input is a JSON error (never a traceback page), stale requests are
dropped, and requests naming another host are refused."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from lightning_stylegan.analysis.activation_rates import activation_rates  # noqa: E402
from lightning_stylegan.explore.render import network  # noqa: E402
from lightning_stylegan.explore.server import Explorer, app  # noqa: E402
from lightning_stylegan.network_files import load_generator  # noqa: E402

from tiny_networks import tiny_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore")
    networks = [network(name, load_generator(tiny_checkpoint(folder / f"{name}.ckpt", seed=seed)))
                for name, seed in (("a", 0), ("b", 1))]
    for name, value in networks[0].G.named_parameters():
        if name.endswith("noise_strength"):
            value.fill_(0.5)  # 0 at initialization: make the noise inputs show
    G = load_generator(tiny_checkpoint(folder / "pin.ckpt", normalization="pin"))
    networks.append(network("pin", G, activation_rates(G, num=8)))
    return Explorer(networks)


@pytest.fixture(scope="module")
def client(explorer):
    return TestClient(app(explorer), base_url="http://127.0.0.1")


def pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded)))).astype(np.int16)


def image(client, **request) -> np.ndarray:
    answer = client.post("/api/render", json={"checkpoints": ["a"]} | request).json()
    assert "error" not in answer, answer
    return pixels(answer["images"][0]["image"])


def test_the_page_and_the_networks_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/api/render" in page.text
    networks = client.get("/api/networks").json()["networks"]
    assert [n["name"] for n in networks] == ["a", "b", "pin"] and networks[0]["resolution"] == 16
    assert "ablate" in networks[0]["unavailable"] and "ablate" not in networks[2]["unavailable"]
    assert "transform" in networks[0]["unavailable"] and networks[0]["layers"][0].startswith("0: ")


def test_each_control_changes_the_image(client):
    base = image(client, seed=0)
    assert base.shape == (16, 16, 3)
    assert np.array_equal(base, image(client, seed=0))  # the same request, the same pixels
    for changed in ({"seed": 1}, {"psi": 0.5}, {"mix": {"seed": 1, "layers": [0, 3]}},
                    {"walk": {"seeds": [0, 1], "t": 0.5, "space": "z"}}, {"walk": {"seeds": [0, 1], "t": 0.5, "space": "w"}},
                    {"noise": "random"}, {"noise": "none"}):
        assert np.abs(image(client, **({"seed": 0} | changed)) - base).mean() > 0.5, changed
    assert np.array_equal(image(client, seed=0, walk={"seeds": [0, 1], "t": 0.0, "space": "w"}), base)


def test_two_checkpoints_are_drawn_side_by_side_at_the_same_latent(client):
    answer = client.post("/api/render", json={"checkpoints": ["a", "b"], "seed": 3}).json()
    a, b = (pixels(item["image"]) for item in answer["images"])
    assert [item["name"] for item in answer["images"]] == ["a", "b"] and np.abs(a - b).mean() > 0.5
    assert np.array_equal(a, image(client, seed=3))


def test_the_layer_view_outlines_the_artifact_region(client):
    answer = client.post("/api/render", json={"checkpoints": ["a"], "seed": 0, "layer": 2}).json()
    layer = answer["images"][0]["layer"]
    heat = pixels(layer["magnitude"])
    assert heat.shape == (8, 8, 3) and layer["index"] == 2
    outline = (heat == [0, 255, 255]).all(axis=-1)
    assert outline.any() == (layer["region_fraction"] > 0)
    assert pixels(layer["feature_maps"]).ndim == 2 and len(layer["channels"]) == 16


@pytest.mark.parametrize("request_, words", [
    ({"seed": -1}, "seed must be an integer"), ({"psi": "x"}, "psi must be a number"),
    ({"layer": 99}, "layer must be between"), ({"checkpoints": ["/etc/passwd"]}, "checkpoints must name"),
    ({"noise": "loud"}, "noise must be one of"), ({"translate": [0.1, 0]}, "transform does not apply"),
    ({"mix": {"seed": 1, "layers": [3, 1]}}, "mix.layers"), ({"ablate": True, "layer": 0}, "ablate does not apply"),
    ({"projected": "x"}, "not one of the --projected-w")])
def test_bad_input_is_a_json_error(client, request_, words):
    response = client.post("/api/render", json={"checkpoints": ["a"]} | request_)
    assert response.status_code == 400 and words in response.json()["error"], response.text


def test_a_body_that_is_not_json_is_an_error(client):
    response = client.post("/api/render", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not JSON" in response.json()["error"]


def test_a_request_no_longer_the_newest_is_not_rendered(explorer):
    explorer.newest = 5
    assert explorer.render(4, {"checkpoints": ["a"]}) == {"stale": True}
    assert "images" in explorer.render(5, {"checkpoints": ["a"]})


def test_requests_naming_another_host_are_refused(explorer):
    foreign = TestClient(app(explorer), base_url="http://attacker.example")
    assert foreign.get("/api/networks").status_code == 400


def test_the_walk_is_saved_as_an_mp4(client, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    response = client.post("/api/walk.mp4", json={"checkpoints": ["a"], "frames": 5,
                                                  "walk": {"seeds": [0, 1], "space": "w"}})
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    (tmp_path / "walk.mp4").write_bytes(response.content)
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "walk.mp4"))
    meta = next(reader)
    assert meta["size"] == (16, 16) and len(list(reader)) == 5
    bad = client.post("/api/walk.mp4", json={"checkpoints": ["a"], "frames": 10 ** 6, "walk": {"seeds": [0, 1]}})
    assert bad.status_code == 400 and "frames must be" in bad.json()["error"]


def test_the_low_rate_neurons_are_shown_and_ablated(client):
    """004's low-rate neurons of a layer with a --rates file: counted, drawn, and zeroed by the switch."""
    plain = client.post("/api/render", json={"checkpoints": ["pin"], "seed": 0, "layer": 2}).json()["images"][0]
    view = plain["layer"]
    assert view["normalization"]["kind"] == "features" and view["normalization"]["channel_std_max"] > 0
    assert 0 < view["low_rate"]["neurons"] <= view["low_rate"]["of"] and pixels(view["low_rate"]["heatmap"]).ndim == 3
    ablated = client.post("/api/render", json={"checkpoints": ["pin"], "seed": 0, "layer": 2,
                                               "ablate": True}).json()["images"][0]
    assert ablated["ablated"]["zeroed"] == view["low_rate"]["activated_here"] > 0
    assert np.abs(pixels(ablated["image"]) - pixels(plain["image"])).mean() > 0
    demod = client.post("/api/render", json={"checkpoints": ["a"], "seed": 0, "layer": 2}).json()["images"][0]
    assert demod["layer"]["normalization"]["kind"] == "weights"


def test_the_command_prints_its_url_warns_on_every_interface_and_names_the_missing_extra(tmp_path, capsys,
                                                                                         monkeypatch):
    import sys

    import uvicorn

    from lightning_stylegan.explore import command

    path = tiny_checkpoint(tmp_path / "tiny.ckpt")
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: served.append((host, port)))  # no real server
    assert command.main(["--ckpt", str(path), "--host", "0.0.0.0", "--port", "9123"]) == 0
    out, err = capsys.readouterr()
    assert served == [("0.0.0.0", 9123)] and "http://0.0.0.0:9123/" in out and "ssh -L 9123:127.0.0.1:9123" in out
    assert "warning: serving on 0.0.0.0" in err
    assert command.main(["--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert "missing.ckpt" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as without the explore extra
    assert command.main(["--ckpt", str(path)]) == 2
    assert 'pip install "lightning-stylegan[explore]"' in capsys.readouterr().err
