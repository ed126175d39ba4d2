"""docker/: the image builds from the working tree with podman and runs sealrtc; the deployment
files validate offline.

The build runs inside the private network namespace of scripts/test: it reaches nothing but a
wheelhouse of the runtime dependencies served on the namespace's own address (made outside by
scripts/container-setup, with the local base images). Its pip configuration and the machine's CA
bundle reach the build as build secrets only, and the test checks they are in no layer.
Podman, the base images and the validators are installed by scripts/test: without them these
tests fail, never skip.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .rtc_helpers import require_namespace

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
CONTAINERS = Path(os.environ.get("SEALRTC_CONTAINERS", "/var/tmp/sealrtc-containers"))
BASE_IMAGE = "localhost/sealrtc-test-python:3.11"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MAX_ADDED_MB = 300  # the venv on top of the base: numpy + av (FFmpeg) are most of it


def podman_env() -> dict[str, str]:
    return {
        **os.environ,
        "CONTAINERS_CONF": str(CONTAINERS / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(CONTAINERS / "storage.conf"),
    }


def podman(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=env or podman_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: scripts/test installs it (scripts/container-setup)")
    for name in ("containers.conf", "storage.conf", "wheels/.stamp"):
        if not (CONTAINERS / name).exists():
            pytest.fail(f"{CONTAINERS / name} is missing: run the tests through scripts/test (scripts/container-setup)")
    if podman("image", "exists", BASE_IMAGE).returncode != 0:
        pytest.fail(f"the base image {BASE_IMAGE} is missing: scripts/container-setup makes it")


@dataclass(frozen=True)
class Image:
    tag: str
    marker: str  # written into both build secrets: must appear in no layer
    build_seconds: float


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    require_namespace()
    require_podman()
    tmp = tmp_path_factory.mktemp("build")
    host = os.environ["SEALRTC_HOST_ADDRESS"]
    server = http.server.ThreadingHTTPServer((host, 0), partial(_Quiet, directory=str(CONTAINERS / "wheels")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    marker = f"sealrtc-build-secret-{secrets.token_hex(8)}"
    pipconf = tmp / "pip.conf"
    pipconf.write_text(
        f"# {marker}\n[global]\nno-index = true\nfind-links = http://{host}:{server.server_address[1]}/\n"
        f"trusted-host = {host}\n"
    )
    cacert = tmp / "ca.pem"
    cacert.write_text(CA_BUNDLE.read_text() + f"# {marker}\n")
    tag = f"localhost/sealrtc:test-{os.getpid()}"
    started = time.monotonic()
    try:
        build = podman(
            "build", "--network", "host", "--pull=never", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--secret", f"id=pipconf,src={pipconf}", "--secret", f"id=cacert,src={cacert}",
            "-f", str(DOCKER / "Dockerfile"), "-t", tag, str(ROOT),
            timeout=600,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    try:
        yield Image(tag, marker, time.monotonic() - started)
    finally:
        podman("rmi", tag)  # untag; the layers stay cached for the next run


def test_image_runs_sealrtc(image: Image) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    run = podman("run", "--rm", "--pull=never", "--network", "none", image.tag, "--version")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"sealrtc {version}"


def test_image_is_lean_and_unprivileged(image: Image) -> None:
    inspect = podman("image", "inspect", image.tag)
    assert inspect.returncode == 0, inspect.stderr
    config = json.loads(inspect.stdout)[0]["Config"]
    assert config["Entrypoint"] == ["sealrtc"]
    assert config["User"] == "10001:10001"
    probe = (
        "id -u; for c in gcc cc make; do command -v $c && echo HAS-$c; done; "
        "for m in pytest mypy hypothesis ruff setuptools pip; do "
        'python -c "import $m" 2>/dev/null && echo HAS-$m; done; '
        "test -w /reports && echo reports-writable; true"
    )
    run = podman("run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "sh", image.tag, "-c", probe)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split()
    assert lines[0] == "10001"
    assert not [line for line in lines if line.startswith("HAS-")], run.stdout
    assert "reports-writable" in lines
    sizes = {}
    for name in (image.tag, BASE_IMAGE):
        out = podman("image", "inspect", "--format", "{{.Size}}", name)
        sizes[name] = int(out.stdout.strip())
    added_mb = (sizes[image.tag] - sizes[BASE_IMAGE]) / 1e6
    print(f"image {sizes[image.tag] / 1e6:.0f} MB = base {sizes[BASE_IMAGE] / 1e6:.0f} MB + {added_mb:.0f} MB")
    assert added_mb < MAX_ADDED_MB


def test_build_secrets_are_in_no_layer(image: Image, tmp_path: Path) -> None:
    history = podman("history", "--no-trunc", image.tag)
    assert history.returncode == 0 and image.marker not in history.stdout
    archive = tmp_path / "image.tar"
    save = podman("save", "--format", "docker-archive", "-o", str(archive), image.tag, timeout=300)
    assert save.returncode == 0, save.stderr
    needle = image.marker.encode()
    with archive.open("rb") as f:  # layers are plain tars here: a byte search finds any copy
        tail = b""
        while chunk := f.read(1 << 22):
            assert needle not in tail + chunk, "a build secret was stored in the image"
            tail = chunk[-len(needle) :]


def test_short_load_runs_in_the_container(image: Image) -> None:
    # --network host: the container shares this private namespace (its veth pair; nothing else).
    env = {**podman_env(), "SEALRTC_SECRET": secrets.token_urlsafe(16)}
    run = podman(
        "run", "--rm", "--pull=never", "--network", "host", "-e", "SEALRTC_SECRET", image.tag,
        "load", "--rooms", "1", "--publishers", "1", "--subscribers", "2", "--intruders", "1",
        "--duration", "5", "--workers", "1", "--no-isolate", "--quiet", "--json", "-",
        env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout[run.stdout.index("{") : run.stdout.rindex("}") + 1])
    assert report["verdict"] == "pass"
    assert report["participants"]["joined"] == report["participants"]["planned"] == 3
    assert all(a["ok"] for a in report["assertions"])


JANUS_IMAGE = "localhost/sealrtc-janus:test"


@pytest.fixture(scope="module")
def janus_url() -> Iterator[str]:
    """docker/janus's image (built by scripts/container-setup: apt needs the mirror) running with
    its own configuration in this namespace."""
    require_namespace()
    require_podman()
    recipe = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((DOCKER / "janus").iterdir()))).hexdigest()[:16]
    label = podman("image", "inspect", "--format", '{{index .Labels "sealrtc.recipe"}}', JANUS_IMAGE)
    if label.stdout.strip() != recipe:
        pytest.fail(f"{JANUS_IMAGE} is missing or older than docker/janus: scripts/container-setup builds it")
    name = f"sealrtc-janus-{os.getpid()}"
    start = podman("run", "-d", "--rm", "--pull=never", "--network", "host", "--name", name, JANUS_IMAGE)
    assert start.returncode == 0, start.stderr
    host = os.environ["SEALRTC_HOST_ADDRESS"]
    try:
        deadline = time.monotonic() + 15
        while True:  # polling a starting process: there is no event to await
            try:
                socket.create_connection((host, 8188), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("Janus did not listen on 8188: " + podman("logs", name).stdout[-3000:])
                time.sleep(0.1)
        yield f"ws://{host}:8188"
    finally:
        logs = podman("logs", name)
        podman("rm", "-f", "-t", "2", name)
        print(logs.stdout[-2000:])


def run_load(image: Image, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**podman_env(), "SEALRTC_SECRET": secrets.token_urlsafe(16)}
    run = podman(
        "run", "--rm", "--pull=never", "--network", "host", "-e", "SEALRTC_SECRET", image.tag,
        "load", *args, "--workers", "1", "--quiet", "--json", "-",
        env=env, timeout=120,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(run.stdout[run.stdout.index("{") : run.stdout.rindex("}") + 1])
    return run.returncode, report


def test_load_container_against_the_janus_container(image: Image, janus_url: str) -> None:
    # The compose topology in one namespace: rooms created by the run (require_e2ee)...
    rc, report = run_load(image, "--janus", janus_url, "--rooms", "2", "--subscribers", "2", "--intruders", "1",
                          "--duration", "5")  # fmt: skip
    assert rc == 0, report["errors"]
    assert report["participants"]["joined"] == report["participants"]["planned"] == 6
    # ... and the configured E2EE room 4343, which refuses plain media.
    rc, report = run_load(image, "--janus", janus_url, "--room", "4343", "--subscribers", "1", "--duration", "4")
    assert rc == 0, report["errors"]
    assert report["participants"]["joined"] == report["participants"]["planned"] == 2
    rc, report = run_load(image, "--janus", janus_url, "--room", "4343", "--no-e2ee", "--duration", "3")
    assert rc == 1
    assert report["participants"]["joined"] < report["participants"]["planned"]
