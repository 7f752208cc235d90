"""HTTPS and secrets: a coordinator serving TLS with a site's private CA, commands and a farm that trust
that CA (and only with it), and tokens read from a file only its owner may read."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site
from tests.services import unavailable
from tests.waiting import wait_until
from xtreaming.coordinator.api.auth import hash_token

pytestmark = pytest.mark.slow

ADMIN_SECRET = "the-admin-secret"
FARM_SECRET = "the-farm-secret"


def openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        unavailable("openssl not found (it makes the test's certificates): install it with 'apt-get install openssl'")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=site CA", "-days", "2", cwd=folder
    )
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=folder,
    )  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def secret_file(path: Path, secret: str, mode: int = 0o600) -> Path:
    path.write_text(secret + "\n")
    path.chmod(mode)
    return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Site, Path]]:
    ca, certificate, key = make_certificates(tmp_path)
    site = Site(tmp_path)
    site.url = site.url.replace("http://", "https://")
    tokens = [
        {"name": "ana", "role": "admin", "sha256": hash_token(ADMIN_SECRET)},
        {"name": "farm-poa", "role": "farm", "sha256": hash_token(FARM_SECRET), "farms": ["poa-*"]},
    ]
    site.env |= {
        "XTREAMING_URL": site.url,
        "XTREAMING_CERTFILE": str(certificate),
        "XTREAMING_KEYFILE": str(key),
        "XTREAMING_TOKENS": json.dumps(tokens),
    }
    trusted = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    site.start(lambda: httpx.get(f"{site.url}/api/queues", verify=trusted, headers=headers).is_success, "https")
    yield site, ca
    site.stop()


def test_commands_reach_an_https_coordinator_trusting_the_sites_ca(site: tuple[Site, Path], tmp_path: Path) -> None:
    server, ca = site
    server.env["XTREAMING_TOKEN_FILE"] = str(secret_file(tmp_path / "admin.token", ADMIN_SECRET))

    untrusted = server.run("queues")
    server.env["XTREAMING_CA_FILE"] = str(ca)
    trusted = server.run("queues")

    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower()
    assert trusted.returncode == 0, trusted.stderr


def test_a_token_file_others_may_read_is_refused(site: tuple[Site, Path], tmp_path: Path) -> None:
    server, ca = site
    server.env |= {"XTREAMING_CA_FILE": str(ca)}
    server.env["XTREAMING_TOKEN_FILE"] = str(secret_file(tmp_path / "open.token", ADMIN_SECRET, mode=0o644))

    refused = server.run("queues")
    server.env["XTREAMING_TOKEN"] = ADMIN_SECRET
    server.env["XTREAMING_TOKEN_FILE"] = str(secret_file(tmp_path / "closed.token", ADMIN_SECRET))
    both = server.run("queues")

    assert refused.returncode != 0
    assert "may be read by others (mode 644)" in refused.stderr
    assert both.returncode != 0
    assert "keep one" in both.stderr


def test_a_farm_registers_over_https_with_its_token_from_a_file(site: tuple[Site, Path], tmp_path: Path) -> None:
    server, ca = site
    env = {k: v for k, v in server.env.items() if k not in ("XTREAMING_TOKEN", "XTREAMING_TOKENS")}
    env["XTREAMING_TOKEN_FILE"] = str(secret_file(tmp_path / "farm.token", FARM_SECRET))
    command = [sys.executable, "-m", "xtreaming", "farm", "--name", "poa-1", "--slots", "1", "--ca-file", str(ca)]
    farm = subprocess.Popen([*command, "--work-dir", str(tmp_path / "farm")], env=env)
    trusted = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    try:

        def registered() -> bool:
            assert farm.poll() is None, f"the farm exited with {farm.returncode}"
            return [f["id"] for f in httpx.get(f"{server.url}/api/farms", verify=trusted, headers=headers).json()] == [
                "poa-1"
            ]

        wait_until(registered, 30, "the farm to register over https")
        farm_environ = Path(f"/proc/{farm.pid}/environ").read_bytes()
        # Its lease requests (on connections of their own: ``http_connections.py``) trust the CA too.
        queue = f"{server.url}/api/queues/MULTCOB02.1186.COBSINC.TLS"
        message = {"messages": [{"key": "1", "value": "{}"}]}
        with httpx.Client(verify=trusted, headers=headers) as admin:
            admin.post(f"{server.url}/api/topics/MULTCOB02.1186.COBSINC.TLS/messages", json=message).raise_for_status()
            settings = {"handler": "xtreaming.demo.worker:noop"}
            admin.patch(f"{queue}/settings", json=settings).raise_for_status()
            wait_until(lambda: admin.get(queue).json()["consumed"] == 1, 30, "the farm to run the message over https")
    finally:
        farm.terminate()
        farm.wait(timeout=30)
    assert FARM_SECRET.encode() not in farm_environ  # a worker of the same user reading it finds no token
