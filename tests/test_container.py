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
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from .rtc_helpers import require_namespace

pytestmark = [pytest.mark.network, pytest.mark.container]

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
    for name in ("containers.conf", "storage.conf", "wheels/.stamp", "apt/.stamp"):
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
    servers = {name: http.server.ThreadingHTTPServer((host, 0), partial(_Quiet, directory=str(CONTAINERS / name)))
               for name in ("wheels", "apt")}  # fmt: skip
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    wheels, apt = (f"http://{host}:{servers[name].server_address[1]}/" for name in ("wheels", "apt"))
    marker = f"sealrtc-build-secret-{secrets.token_hex(8)}"
    pipconf = tmp / "pip.conf"
    pipconf.write_text(f"# {marker}\n[global]\nno-index = true\nfind-links = {wheels}\ntrusted-host = {host}\n")
    cacert = tmp / "ca.pem"
    cacert.write_text(CA_BUNDLE.read_text() + f"# {marker}\n")
    aptsources = tmp / "sources.list"  # the flat repository of scripts/container-setup
    aptsources.write_text(f"# {marker}\ndeb [trusted=yes] {apt} ./\n")
    tag = f"localhost/sealrtc:test-{os.getpid()}"
    started = time.monotonic()
    try:
        build = podman(
            "build", "--network", "host", "--pull=never", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--secret", f"id=pipconf,src={pipconf}", "--secret", f"id=cacert,src={cacert}",
            "--secret", f"id=aptsources,src={aptsources}",
            "-f", str(DOCKER / "Dockerfile"), "-t", tag, str(ROOT),
            timeout=600,
        )  # fmt: skip
    finally:
        for server in servers.values():
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


# The least privilege the zero-setup modes need: no network at all, the image's own user, no
# capability, no privilege gain, a read-only root file system. They build their own private
# network (`unshare -rn`: a user namespace, then `ip` for a veth pair), which podman's default
# seccomp profile allows.
ISOLATED = ["--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--read-only", "--read-only-tmpfs=false"]  # fmt: skip


def test_demo_runs_in_the_image_without_a_network(image: Image) -> None:
    run = podman("run", "--rm", "--pull=never", *ISOLATED, image.tag, "demo", "--duration", "3", "--json", "-")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout[run.stdout.index("{") : run.stdout.rindex("}") + 1])
    assert summary["ok"] and summary["relay"]["plaintext_frames"] == 0
    keyed, keyless = summary["subscribers"]
    assert keyed["frames_decoded"] > 0 and keyless["frames_decoded"] == 0


def test_short_load_runs_in_the_image_without_a_network(image: Image) -> None:
    """The embedded relay (a child process) and the bots, isolated as the demo is; the image's
    user, proved by the container's own `id -u`."""
    env = {**podman_env(), "SEALRTC_SECRET": secrets.token_urlsafe(16)}
    script = 'id -u >&2; exec sealrtc "$@"'
    run = podman(
        "run", "--rm", "--pull=never", *ISOLATED, "-e", "SEALRTC_SECRET", "--entrypoint", "sh", image.tag,
        "-c", script, "sh", "load", "--rooms", "1", "--publishers", "1", "--subscribers", "2", "--intruders", "1",
        "--duration", "5", "--workers", "1", "--quiet", "--json", "-",
        env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stderr.split()[0] == "10001"
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
    # Locked down as compose.yaml's janus service says (the k8s Deployment's context is the same):
    # the image's user, a read-only root without tmpfs, no capabilities, no privilege gain.
    locks = compose_locks(load_yaml(DOCKER / "compose.yaml")[0]["services"]["janus"])
    start = podman("run", "-d", "--rm", "--pull=never", "--network", "host", *locks, "--name", name, JANUS_IMAGE)
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


# --- compose.yaml and the Kubernetes manifests -------------------------------------------------


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is missing: scripts/test installs the test extras (pip install -e '.[test]')")
    return str(path)


def compose_locks(service: dict[str, Any]) -> list[str]:
    """podman flags for a compose service's read_only, cap_drop, security_opt and tmpfs."""
    flags = ["--read-only", "--read-only-tmpfs=false"] if service.get("read_only") else []
    flags += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
    flags += [f"--security-opt={opt}" for opt in service.get("security_opt", [])]
    return flags + [f"--tmpfs={path}" for path in service.get("tmpfs", [])]


def compose_secrets(service: dict[str, Any], tmp: Path, values: dict[str, str]) -> list[str]:
    """The service's compose secrets as files under /run/secrets, as compose mounts them outside
    swarm mode (a bind mount keeping the file's owner and mode: docker/README.md's chown 10001)."""
    flags = []
    for name in service.get("secrets", []):
        path = tmp / f"{name}.txt"
        path.write_text(values[name])
        os.chown(path, 10001, 10001)
        path.chmod(0o400)
        flags += ["-v", f"{path}:/run/secrets/{name}:ro"]
    return flags


def k8s_pod(path: Path) -> dict[str, Any]:
    """The pod spec of the manifest's one Job or Pod."""
    (doc,) = [d for d in load_yaml(path) if d["kind"] in ("Job", "Pod")]
    spec: dict[str, Any] = doc["spec"]["template"]["spec"] if doc["kind"] == "Job" else doc["spec"]
    return spec


def k8s_pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in k8s_files():
        for doc in load_yaml(path):
            if doc["kind"] in ("Deployment", "Job"):
                yield f"{path.name} {doc['kind']}", doc["spec"]["template"]["spec"]
            elif doc["kind"] == "Pod":
                yield f"{path.name} Pod", doc["spec"]


def k8s_locks(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """podman flags for a container's security context (the pod's, refined by the container's)."""
    context = {**pod["securityContext"], **container["securityContext"]}
    flags = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context["readOnlyRootFilesystem"]:
        flags += ["--read-only", "--read-only-tmpfs=false"]
    flags += [f"--cap-drop={cap}" for cap in context["capabilities"]["drop"]]
    if context["allowPrivilegeEscalation"] is False:
        flags += ["--security-opt=no-new-privileges"]
    return flags


def k8s_volumes(pod: dict[str, Any], container: dict[str, Any], tmp: Path, reports: Path,
                secret_values: dict[str, dict[str, str]]) -> list[str]:  # fmt: skip
    """podman mounts for a container's volumeMounts: the claim is `reports`; a Secret is a
    directory of its keys, owned by root and the pod's fsGroup with the volume's defaultMode, as
    the kubelet makes it."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    flags = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "persistentVolumeClaim" in volume:
            flags += ["-v", f"{reports}:{mount['mountPath']}"]
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
            directory = tmp / name
            directory.mkdir(exist_ok=True)
            for key, value in secret_values[name].items():
                (directory / key).write_text(value)
                os.chown(directory / key, 0, pod["securityContext"]["fsGroup"])
                (directory / key).chmod(volume["secret"]["defaultMode"])
            flags += ["-v", f"{directory}:{mount['mountPath']}:ro"]
        else:
            pytest.fail(f"volume {mount['name']}: the test knows claims and Secrets only")
    return flags


@pytest.mark.unit
def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    ok = subprocess.run([*check, str(DOCKER / "compose.yaml")], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    typo = tmp_path / "compose.yaml"  # the validator is strict: an unknown key fails
    typo.write_text((DOCKER / "compose.yaml").read_text().replace("replicas:", "replica:"))
    assert subprocess.run([*check, str(typo)], capture_output=True, check=False).returncode == 1


@pytest.mark.unit
def test_compose_keeps_the_secret_and_the_token_in_secret_files() -> None:
    compose = load_yaml(DOCKER / "compose.yaml")[0]
    services = compose["services"]
    load, relay = services["load"], services["relay"]
    assert load["secrets"] == ["sealrtc_secret", "sealrtc_token"] and relay["secrets"] == ["sealrtc_token"]
    assert set(compose["secrets"]) == {"sealrtc_secret", "sealrtc_token"}
    assert "--secret-file /run/secrets/sealrtc_secret" in load["command"][0]
    assert "--token-file /run/secrets/sealrtc_token" in load["command"][0]
    # The relay listens beyond loopback: it requires the same token to publish and to subscribe.
    command = relay["command"]
    assert command[command.index("--listen") + 1].startswith("0.0.0.0:")
    for flag in ("--publish-token-file", "--subscribe-token-file"):
        assert command[command.index(flag) + 1] == "/run/secrets/sealrtc_token"
    for service in services.values():
        names = list(service.get("environment", {}))
        assert not [n for n in names if "SECRET" in n or "TOKEN" in n], names
    assert services["janus"]["build"]["context"] == "janus"
    assert (DOCKER / relay["build"]["context"] / "docker/Dockerfile").exists()


@pytest.mark.unit
def test_every_compose_service_is_locked_down() -> None:
    """A read-only root, no capability, no privilege gain (setuid binaries stay powerless), and
    nothing that would undo it."""
    services = load_yaml(DOCKER / "compose.yaml")[0]["services"]
    assert set(services) == {"janus", "relay", "load", "merge"}
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        for undo in ("cap_add", "privileged", "user", "network_mode", "pid", "ipc", "devices", "userns_mode"):
            assert undo not in service, (name, undo)
        assert not [o for o in service["security_opt"] if "unconfined" in o], name


@pytest.mark.unit
def test_every_k8s_container_is_locked_down() -> None:
    """Every container of every Deployment, Job and Pod: non-root, a read-only root, no privilege
    escalation, no capability, the runtime's seccomp profile, no service-account token; secrets
    only as read-only files of Secrets (never environment variables)."""
    specs = dict(k8s_pod_specs())
    assert len(specs) == 5, sorted(specs)  # janus, relay, load, merge, reports
    for where, pod in specs.items():
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0, where
        assert "hostNetwork" not in pod and "hostPID" not in pod, where
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container.get("securityContext", {})
            assert context.get("runAsNonRoot") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities") == {"drop": ["ALL"]}, where
            assert context.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert "privileged" not in context and "runAsUser" not in context, where
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), (where, env["name"])
            assert not [e for e in container.get("envFrom", []) if "secretRef" in e], where
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if "secret" in volume:
                    assert mount["readOnly"] is True and mount["mountPath"].startswith("/run/secrets/"), where
                    assert volume["secret"]["defaultMode"] == 0o440, where  # root:fsGroup, no one else


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error}, enough for compose.yaml's environment."""

    def one(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        assert op != ":?", f"{name} is required: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)((?:[^{}]|\$\([^)]*\))*)\}", one, value)


def test_compose_load_replicas_each_claim_a_distinct_shard(image: Image, tmp_path: Path) -> None:
    """Compose gives replicas no index: each claims one on the reports volume. Run the service's
    own script in SHARDS + 1 concurrent containers (a stand-in `sealrtc` records its arguments):
    SHARDS distinct shards run, the extra replica refuses to run a shard twice."""
    load = load_yaml(DOCKER / "compose.yaml")[0]["services"]["load"]
    script = load["command"][0].replace("$$", "$")
    env = {k: interpolate(str(v), {"RUN_ID": "run-t", "SHARDS": "3"}) for k, v in load["environment"].items()}
    reports, stub = tmp_path / "reports", tmp_path / "stub"
    reports.mkdir(mode=0o777)
    reports.chmod(0o777)
    stub.mkdir()
    (stub / "sealrtc").write_text(
        '#!/bin/sh\nout=; prev=\nfor a in "$@"; do [ "$prev" = --json ] && out=$a; prev=$a; done\n'
        'printf \'%s\\n\' "$@" > "$out"\n'
    )
    (stub / "sealrtc").chmod(0o755)
    env_args = [f"--env={k}={v}" for k, v in env.items()]
    cmd = ["podman", "run", "--rm", "--pull=never", "--network", "none", *compose_locks(load),
           "-v", f"{reports}:/reports", "-v", f"{stub}:/stub:ro", "--env=PATH=/stub:/usr/bin:/bin", *env_args,
           "--entrypoint", "/bin/sh", image.tag, "-c", script]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    results = [(p.wait(60), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 0, 0, 2], results
    assert any("no free shard index" in err for rc, err in results if rc == 2)
    for i in range(3):
        argv = (reports / "run-t" / f"shard-{i}.json").read_text().split("\n")
        assert argv[:3] == ["load", "--janus", "ws://janus:8188"]
        for flag, value in (("--shard", f"{i}/3"), ("--run-id", "run-t"), ("--workers", "1"),
                            ("--secret-file", "/run/secrets/sealrtc_secret"), ("--metrics-listen", "0.0.0.0:9100"),
                            ("--token-file", "/run/secrets/sealrtc_token")):  # fmt: skip
            assert argv[argv.index(flag) + 1] == value
        assert "--start-at" not in argv  # START_AT unset: no common start


def k8s_files() -> list[Path]:
    files = sorted((DOCKER / "k8s").glob("*.yaml"))
    assert {f.name for f in files} >= {"janus.yaml", "load-job.yaml", "merge-job.yaml", "relay.yaml", "reports.yaml"}
    return files


@pytest.mark.unit
@pytest.mark.parametrize("version", ["1.29.0", "1.33.0"])
def test_k8s_manifests_validate_strictly(version: str, tmp_path: Path) -> None:
    validate = [tool("kubernetes-validate"), "--strict", "-k", version]
    ok = subprocess.run([*validate, *map(str, k8s_files())], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    typo = tmp_path / "job.yaml"  # strict: a misspelled field fails
    typo.write_text((DOCKER / "k8s/load-job.yaml").read_text().replace("parallelism:", "paralellism:"))
    assert subprocess.run([*validate, str(typo)], capture_output=True, check=False).returncode == 1


def load_job_against_the_relay(image: Image, tmp_path: Path, token: str) -> dict[str, Any]:
    """One shard of the load Job, scaled down, switched to the relay as docker/README.md says
    (--server instead of --janus, plus --token-file from the Secret the Job mounts)."""
    pod = k8s_pod(DOCKER / "k8s/load-job.yaml")
    (container,) = pod["containers"]
    values = {"JOB_COMPLETION_INDEX": "0", "SHARDS": "1", "RUN_ID": "run-relay", "START_AT": str(int(time.time()))}
    scaled = {"rooms": "1", "subscribers": "2", "intruders": "1", "duration": "5", "ramp": "20"}
    args = []
    for arg in (expand(a, values) for a in container["args"]):
        key = arg.removeprefix("--").split("=", 1)[0]
        if key == "janus":
            arg = f"--server=http://{os.environ['SEALRTC_HOST_ADDRESS']}:8080"
        elif key in scaled:
            arg = f"--{key}={scaled[key]}"
        elif key == "metrics-listen":
            continue
        args.append(arg)
    args.append("--token-file=/run/secrets/sealrtc-relay-token/token")
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o777)
    (tmp_path / "load").mkdir()
    secret_values = {"sealrtc-e2ee": {"secret": secrets.token_urlsafe(16)}, "sealrtc-relay-token": {"token": token}}
    run = podman(
        "run", "--rm", "--pull=never", "--network", "host", *k8s_locks(pod, container),
        *k8s_volumes(pod, container, tmp_path / "load", reports, secret_values), image.tag, *args,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert token not in run.stdout + run.stderr
    report: dict[str, Any] = json.loads((reports / "run-relay.shard-0.json").read_text())
    return report


def test_k8s_relay_runs_as_its_manifest_says(image: Image, tmp_path: Path) -> None:
    """The relay Deployment's arguments, security context (non-root, read-only root file system
    with no writable tmpfs either, no capabilities) and token Secret, as the image runs them: it
    refuses requests without the Secret's token, serves one shard of the load Job switched to it
    as docker/README.md says, never logs the token, and stops on SIGTERM."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in load_yaml(DOCKER / "k8s/relay.yaml")}
    pod = docs[("Deployment", "sealrtc-relay")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert docs[("Service", "sealrtc-relay")]["spec"]["ports"][0]["port"] == 8080
    assert "--listen=0.0.0.0:8080" in container["args"]
    token = secrets.token_urlsafe(24)
    mounts = k8s_volumes(pod, container, tmp_path, tmp_path, {"sealrtc-relay-token": {"token": token}})
    name = f"sealrtc-relay-{os.getpid()}"
    start = podman("run", "-d", "--pull=never", "--network", "host", *k8s_locks(pod, container), *mounts,
                   "--name", name, image.tag, *container["args"])  # fmt: skip
    assert start.returncode == 0, start.stderr
    url = f"http://{os.environ['SEALRTC_HOST_ADDRESS']}:8080/whep/room"

    def status(authorization: str | None) -> int:
        headers = {"Content-Type": "application/sdp"} | ({"Authorization": authorization} if authorization else {})
        request = urllib.request.Request(url, data=b"not an offer", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        deadline = time.monotonic() + 15
        while True:  # polling a starting process: there is no event to await
            try:
                status(None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the relay did not listen on 8080: " + podman("logs", name).stderr[-3000:])
                time.sleep(0.1)
        assert status(None) == 401 and status("Bearer wrong-token") == 401
        assert status(f"Bearer {token}") == 400  # past authentication: the body is no SDP offer
        report = load_job_against_the_relay(image, tmp_path, token)
        assert report["participants"] == {"planned": 3, "joined": 3, "failed": 0, "intruders": 1}, report["errors"]
        assert report["verdict"] == "pass"
    finally:
        stop = podman("stop", "-t", "10", name)
        logs = podman("logs", name)
        inspect = podman("inspect", "--format", "{{.State.ExitCode}}", name)
        podman("rm", "-f", name)
    assert stop.returncode == 0 and inspect.stdout.strip() == "0", logs.stderr[-3000:]
    assert "stopped" in logs.stderr and token not in logs.stdout + logs.stderr


def test_compose_relay_runs_as_written(image: Image, tmp_path: Path) -> None:
    """compose.yaml's relay command, locked down as the file says, with its token as a compose
    secret file (owner 10001, mode 0400, as docker/README.md makes it): it reads the token, starts
    on 0.0.0.0 and stops."""
    relay = load_yaml(DOCKER / "compose.yaml")[0]["services"]["relay"]
    token = secrets.token_urlsafe(24)
    run = podman(
        "run", "--rm", "--pull=never", "--network", "none", *compose_locks(relay),
        *compose_secrets(relay, tmp_path, {"sealrtc_token": token}), image.tag, *relay["command"], "--duration", "2",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sealrtc relay on http://0.0.0.0:8080" in run.stderr and "stopped" in run.stderr
    assert token not in run.stdout + run.stderr


@pytest.mark.unit
def test_k8s_janus_config_is_docker_janus_config() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in load_yaml(DOCKER / "k8s/janus.yaml")}
    data = docs[("ConfigMap", "sealrtc-janus")]["data"]
    assert data == {p.name: p.read_text() for p in (DOCKER / "janus").glob("*.jcfg")}
    service = docs[("Service", "janus")]
    assert service["spec"]["ports"][0]["port"] == 8188


@pytest.mark.unit
def test_k8s_load_job_shards_2000_bots_and_keeps_the_secret_in_a_secret() -> None:
    (job,) = load_yaml(DOCKER / "k8s/load-job.yaml")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    shards = int(env["SHARDS"]["value"])
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == shards
    assert "SEALRTC_SECRET" not in env
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"][1:] if "=" in a)
    # The E2EE secret: the key `secret` of the Secret sealrtc-e2ee, a file read with --secret-file.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    directory, key = args["secret-file"].rsplit("/", 1)
    assert mounts[directory]["secret"]["secretName"] == "sealrtc-e2ee" and key == "secret"
    assert "optional" not in mounts[directory]["secret"]
    # The relay's token, for a run against the relay (docker/README.md adds --token-file).
    assert mounts["/run/secrets/sealrtc-relay-token"]["secret"] == {
        "secretName": "sealrtc-relay-token", "defaultMode": 0o440, "optional": True}  # fmt: skip
    readme = (DOCKER / "README.md").read_text()
    assert "--token-file=/run/secrets/sealrtc-relay-token/token" in readme
    assert container["args"][0] == "load"
    assert args["shard"] == "$(JOB_COMPLETION_INDEX)/$(SHARDS)" and args["run-id"] == "$(RUN_ID)"
    assert args["janus"] == "ws://janus:8188"
    assert args["json"] == "/reports/$(RUN_ID).shard-$(JOB_COMPLETION_INDEX).json"
    bots = int(args["rooms"]) * (int(args["publishers"]) + int(args["subscribers"]) + int(args["intruders"]))
    assert bots == 2000 and bots / shards == 100  # ~1 % of a core per bot: 100 bots per CPU
    assert container["resources"]["requests"]["cpu"] == "1" and args["workers"] == "1"
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    # The exporter listens on loopback unless told: Prometheus scrapes the pod address.
    assert "metrics-port" not in args and args["metrics-listen"].startswith("0.0.0.0:")
    port = args["metrics-listen"].rsplit(":", 1)[1]
    assert annotations["prometheus.io/port"] == port == str(container["ports"][0]["containerPort"])
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsUser"] == 10001
    (merge,) = load_yaml(DOCKER / "k8s/merge-job.yaml")
    merge_cmd = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert '"$RUN_ID".shard-*.json' in merge_cmd and "sealrtc report merge" in merge_cmd
    for path in k8s_files():
        text = path.read_text()
        assert "SEALRTC_SECRET" not in text and "SEALRTC_TOKEN" not in text and "kind: Secret" not in text


@pytest.mark.unit
def test_docker_readme_walks_through_a_2000_bot_run() -> None:
    readme = (DOCKER / "README.md").read_text()
    for name in ["Dockerfile", "compose.yaml", "janus/", *(f"k8s/{p.name}" for p in k8s_files())]:
        assert f"`{name}`" in readme, name
    for applied in re.findall(r"apply (docker/\S+)", readme):
        assert (ROOT / applied).exists(), applied
    times = "\N{MULTIPLICATION SIGN}"
    phrases = [f"2,000 bots ≈ 2,000 {times} 1 % = 20 cores", f"20 shards {times} 1 CPU {times} 100 bots"]
    phrases += ["Janus and UDP", "hostNetwork", "nat_1_1_mapping", "secret generic sealrtc-e2ee", "--secret id=cacert"]
    for phrase in phrases:
        assert phrase in readme, phrase
    steps = re.findall(r"^\*\*(\d)\. ", readme, re.MULTILINE)
    assert steps == [str(i) for i in range(1, len(steps) + 1)] and len(steps) >= 7


def expand(arg: str, values: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in container arguments."""
    return re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg)


@pytest.mark.unit
def test_deployment_commands_parse_with_the_cli() -> None:
    from sealrtc.cli.args import build_parser

    parser = build_parser()
    (job,) = load_yaml(DOCKER / "k8s/load-job.yaml")
    values = {"JOB_COMPLETION_INDEX": "3", "SHARDS": "20", "RUN_ID": "run-1", "START_AT": "2026-11-26T08:30:00Z"}
    args = [expand(a, values) for a in job["spec"]["template"]["spec"]["containers"][0]["args"]]
    parsed = parser.parse_args(args)
    assert parsed.shard == "3/20" and parsed.run_id == "run-1"
    assert parsed.secret_file == "/run/secrets/sealrtc-e2ee/secret"
    relay = next(d for d in load_yaml(DOCKER / "k8s/relay.yaml") if d["kind"] == "Deployment")
    parsed = parser.parse_args(relay["spec"]["template"]["spec"]["containers"][0]["args"])
    assert parsed.publish_token_file == parsed.subscribe_token_file == "/run/secrets/sealrtc-relay-token/token"
    (merge,) = load_yaml(DOCKER / "k8s/merge-job.yaml")
    command = merge["spec"]["template"]["spec"]["containers"][0]["args"][0].split("exec sealrtc ", 1)[1]
    parser.parse_args(shlex.split(command.replace('"$RUN_ID"', "run-1")))
    compose = load_yaml(DOCKER / "compose.yaml")[0]["services"]
    env = {k: interpolate(str(v), {"RUN_ID": "run-1", "START_AT": values["START_AT"]})
           for k, v in compose["load"]["environment"].items()}  # fmt: skip
    for service in ("load", "merge"):
        tail = compose[service]["command"][0].replace("$$", "$").split("exec sealrtc ", 1)[1]
        script = 'i=1; printf "%s\\n" ' + tail
        shell = subprocess.run(
            ["sh", "-c", script], env={**os.environ, **env}, capture_output=True, text=True, check=True
        )
        parsed = parser.parse_args(shell.stdout.splitlines())
        assert service == "merge" or parsed.token_file == "/run/secrets/sealrtc_token"
    assert compose["relay"]["command"][0] == "relay"
    parsed = parser.parse_args(compose["relay"]["command"])
    assert parsed.publish_token_file == parsed.subscribe_token_file == "/run/secrets/sealrtc_token"


def test_build_context_holds_only_what_pip_install_needs(tmp_path: Path) -> None:
    """.dockerignore: no venv, cache, report, .git or test file reaches the build context."""
    require_namespace()
    require_podman()
    (tmp_path / "Containerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY . /ctx\nRUN cd /ctx && find . -type f > /files\n")
    tag = f"localhost/sealrtc-context:test-{os.getpid()}"
    containerfile = str(tmp_path / "Containerfile")
    build = podman(
        "build", "--network", "none", "--pull=never", "--layers=false", "-f", containerfile, "-t", tag, str(ROOT)
    )
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        files = podman("run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "cat", tag, "/files").stdout
    finally:
        podman("rmi", tag)
    paths = {line.removeprefix("./") for line in files.split()}
    assert {"pyproject.toml", "README.md", "LICENSE", "client/sealrtc/__init__.py"} <= paths
    top = {p.split("/", 1)[0] for p in paths}
    assert top == {"pyproject.toml", "README.md", "LICENSE", "client"}, top
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc") or ".egg-info" in p]


def test_the_k8s_job_and_merge_run_as_written(image: Image, janus_url: str, tmp_path: Path) -> None:
    """The Indexed Job's own container arguments, scaled down (2 shards, 2 rooms, 8 s), as two
    containers with the pod's security context and Secret files against the Janus container, each
    scraped live on its metrics port at the pod address; then the merge Job's own command, locked
    down likewise, merges their reports on the shared volume into one verdict."""
    pod = k8s_pod(DOCKER / "k8s/load-job.yaml")
    (container,) = pod["containers"]
    merge_pod = k8s_pod(DOCKER / "k8s/merge-job.yaml")
    (merge_container,) = merge_pod["containers"]
    merge_command = merge_container["args"][0]
    scaled = {"rooms": "2", "subscribers": "2", "intruders": "1", "duration": "8", "ramp": "20", "janus": janus_url}
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o777)
    run_id = f"run-{secrets.token_hex(3)}"
    start_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    secret_values = {"sealrtc-e2ee": {"secret": secrets.token_urlsafe(16)},
                     "sealrtc-relay-token": {"token": secrets.token_urlsafe(16)}}  # fmt: skip
    shards = []
    for index in range(2):
        values = {"JOB_COMPLETION_INDEX": str(index), "SHARDS": "2", "RUN_ID": run_id, "START_AT": start_at}
        args = []
        for arg in container["args"]:
            arg = expand(arg, values)
            key = arg.removeprefix("--").split("=", 1)[0]
            if key in scaled:
                arg = f"--{key}={scaled[key]}"
            elif key == "metrics-listen":  # both shards share this namespace's network
                arg = f"--metrics-listen=0.0.0.0:{9100 + index}"
            args.append(arg)
        (tmp_path / f"shard-{index}").mkdir()
        volumes = k8s_volumes(pod, container, tmp_path / f"shard-{index}", reports, secret_values)
        cmd = ["podman", "run", "--rm", "--pull=never", "--network", "host", *k8s_locks(pod, container), *volumes,
               image.tag, *args]  # fmt: skip
        shards.append(
            subprocess.Popen(cmd, env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    host = os.environ["SEALRTC_HOST_ADDRESS"]  # the pod address Prometheus scrapes, not loopback
    scraped: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while len(scraped) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)  # polling HTTP endpoints of other processes
        for index in range(2):
            try:
                with urllib.request.urlopen(f"http://{host}:{9100 + index}/metrics", timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                continue
            if f'shard="{index}"' in text and 'state="joined"' in text:
                scraped[index] = text
    outcomes = [(p.wait(120), p.communicate()) for p in shards]
    for rc, (_, err) in outcomes:
        assert rc == 0, err[-3000:]
    assert sorted(scraped) == [0, 1], "no live metrics from every shard"
    merge = podman(
        "run", "--rm", "--pull=never", "--network", "none", "-e", f"RUN_ID={run_id}",
        *k8s_locks(merge_pod, merge_container), *k8s_volumes(merge_pod, merge_container, tmp_path, reports, {}),
        "--entrypoint", "/bin/sh", image.tag, "-c", merge_command,
    )  # fmt: skip
    assert merge.returncode == 0, merge.stdout[-2000:] + merge.stderr[-2000:]
    merged = json.loads((reports / f"{run_id}.all.json").read_text())
    assert merged["participants"] == {"planned": 6, "joined": 6, "failed": 0, "intruders": 2}
    assert merged["verdict"] == "pass" and not merged["missing_shards"]
    asked = [(a["expr"], a.get("default", False)) for a in merged["assertions"]]
    assert asked == [("p95(latency_video_ms) < 250", False), ("joined == planned", False),  # the file's, then
                     ("decrypt_failures == 0", True), ("intruder_decrypts == 0", True),  # the E2EE defaults
                     ("frames.decrypted > 0", True)]  # fmt: skip
    assert (reports / f"{run_id}.all.html").stat().st_size > 0


def test_the_compose_load_and_merge_services_run_as_written(image: Image, janus_url: str, tmp_path: Path) -> None:
    """compose.yaml's `load` script in two replicas (each claims its shard) against the Janus
    container, locked down as the file says, with the E2EE secret and the relay token as compose
    secret files, then the `merge` service's script."""
    services = load_yaml(DOCKER / "compose.yaml")[0]["services"]
    given = {"RUN_ID": f"run-{secrets.token_hex(3)}", "SHARDS": "2", "ROOMS": "2", "SUBSCRIBERS": "2",
             "DURATION": "8", "TARGET": f"--janus {janus_url}"}  # fmt: skip
    env = {k: interpolate(str(v), given) for k, v in services["load"]["environment"].items()}
    reports = tmp_path / "reports"
    reports.mkdir()
    os.chown(reports, 10001, 10001)
    values = {"sealrtc_secret": secrets.token_urlsafe(16), "sealrtc_token": secrets.token_urlsafe(16)}
    mounts = compose_secrets(services["load"], tmp_path, values)
    replicas = []
    for index in range(2):
        env_args = [f"--env={k}={v}" for k, v in {**env, "METRICS_PORT": str(9110 + index)}.items()]
        cmd = ["podman", "run", "--rm", "--pull=never", "--network", "host", *compose_locks(services["load"]),
               *env_args, "-v", f"{reports}:/reports", *mounts, "--entrypoint", "/bin/sh", image.tag,
               "-c", services["load"]["command"][0].replace("$$", "$")]  # fmt: skip
        replicas.append(subprocess.Popen(cmd, env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in replicas:
        assert p.wait(120) == 0, p.communicate()[1][-3000:]
    script = services["merge"]["command"][0].replace("$$", "$")
    merge = podman(
        "run", "--rm", "--pull=never", "--network", "none", *compose_locks(services["merge"]),
        "-e", f"RUN_ID={env['RUN_ID']}", "-v", f"{reports}:/reports", "--entrypoint", "/bin/sh", image.tag,
        "-c", script,
    )  # fmt: skip
    assert merge.returncode == 0, merge.stdout[-2000:] + merge.stderr[-2000:]
    merged = json.loads((reports / env["RUN_ID"] / "all.json").read_text())
    assert merged["participants"] == {"planned": 6, "joined": 6, "failed": 0, "intruders": 2}
    assert merged["scenario"]["shard"]["merged"] == [0, 1] and merged["verdict"] == "pass"
