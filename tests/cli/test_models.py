"""`dmr models`: list, load, pull, export and reset, through the real command group."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import dmr.cli.models  # noqa: F401  # attaches the `models` group to `cli`
from dmr.cli.main import cli
from dmr.registry import ModelRegistry, default_registry, reset_default_registry, user_registry_path
from together import run_together

GROQ = """\
version: "2026.05.01"
providers:
  groq:
    api_key_env: GROQ_API_KEY
    tiers: {low: llama-3.3-8b-instant, high: llama-3.3-70b-versatile}
models:
  llama-3.3-8b-instant: {cost: {input_per_1m: 0.05, output_per_1m: 0.08}}
  llama-3.3-70b-versatile: {cost: {input_per_1m: 0.59, output_per_1m: 0.79}}
"""
CEREBRAS = 'version: "2026.06.01"\nproviders: {cerebras: {tiers: {low: llama-3.1-8b}}}\n'
BAD = 'version: "1"\nproviders:\n  groq:\n    tiers: {ultra: x}\n    api_key: K\n'


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("DMR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("DMR_REGISTRY", raising=False)
    monkeypatch.delenv("DMR_NO_DEFAULT_REGISTRY", raising=False)
    reset_default_registry()
    yield
    reset_default_registry()


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, ["models", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_list_shows_providers_tiers_models_and_prices():
    out = run().stdout
    assert "registry 2026.11.01 from bundled; fingerprint" in out
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["PROVIDER", "TIER", "MODEL"]
    google_low = next(line for line in lines if line.startswith("google") and " low " in line).split()
    assert google_low[:5] == ["google", "low", "gemini-2.5-flash", "$0.30", "$2.50"]
    assert "1,048,576" in google_low and "US,EU,APAC" in google_low


def test_list_one_provider_and_unknown_provider():
    out = run("--provider", "mistral").stdout
    assert "mistral-large-latest" in out and "gemini" not in out
    result = run("-p", "mistrall", ok=False)
    assert result.exit_code == 1
    assert "unknown provider 'mistrall'" in result.stderr and "did you mean 'mistral'" in result.stderr
    empty = run("-p", "", ok=False)  # an empty name (an unset variable) is not "every provider"
    assert empty.exit_code == 1 and "unknown provider ''" in empty.stderr


def test_list_json_parses_and_matches_the_registry():
    data = json.loads(run("--json").stdout)
    reg = default_registry()
    assert data["version"] == reg.version and data["fingerprint"] == reg.fingerprint
    assert len(data["models"]) == sum(len(reg.provider(p).tiers) for p in reg.providers())
    row = next(r for r in data["models"] if r["provider"] == "openai" and r["tier"] == "high")
    assert row["model"] == "gpt-4.1" and row["regions"] == ["US"] and row["input_per_1m"] == 2.0
    assert json.loads(run("--json", "-p", "google").stdout)["models"][0]["provider"] == "google"


def test_load_merges_and_persists(tmp_path):
    result = run("load", str(write(tmp_path / "groq.yaml", GROQ)))
    assert "with merge" in result.stdout
    assert "providers: 1 added, 0 changed, 0 removed" in result.stdout
    assert "models: 2 added" in result.stdout
    reset_default_registry()  # a fresh process sees the saved registry
    reg = default_registry()
    assert {"google", "groq"} <= set(reg.providers())
    assert reg.resolve("groq", "medium")[0] == "llama-3.3-70b-versatile"
    run("load", str(write(tmp_path / "cerebras.yaml", CEREBRAS)))  # a second load adds to the first
    reset_default_registry()
    assert {"google", "groq", "cerebras"} <= set(default_registry().providers())


def test_load_replace_persists_across_a_fresh_start(tmp_path):
    result = run("load", str(write(tmp_path / "groq.yaml", GROQ)), "--replace")
    assert "with replace" in result.stdout and "providers: 1 added, 0 changed, 4 removed" in result.stdout
    assert user_registry_path().read_text(encoding="utf-8").startswith("# dmr user registry, mode: replace")
    reset_default_registry()
    assert default_registry().providers() == ["groq"]
    run("load", str(write(tmp_path / "cerebras.yaml", CEREBRAS)))  # merging keeps the replacement
    reset_default_registry()
    assert default_registry().providers() == ["groq", "cerebras"]


def test_load_rejects_a_bad_file_and_writes_nothing(tmp_path):
    result = run("load", str(write(tmp_path / "bad.yaml", BAD)), ok=False)
    assert result.exit_code == 1
    assert "bad.yaml: 2 problems" in result.stderr
    assert "providers.groq.tiers.ultra: unknown tier 'ultra'" in result.stderr
    assert "providers.groq.api_key: unknown key" in result.stderr
    assert not user_registry_path().exists()


def test_load_usage_errors_exit_2_and_missing_files_exit_1(tmp_path):
    assert run("load", ok=False).exit_code == 2
    assert run("load", "a", "b", ok=False).exit_code == 2
    missing = run("load", str(tmp_path / "nope.yaml"), ok=False)
    assert missing.exit_code == 1 and "no such registry file" in missing.stderr


def test_load_warns_when_dmr_registry_overrides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DMR_REGISTRY", str(write(tmp_path / "env.yaml", CEREBRAS)))
    result = run("load", str(write(tmp_path / "groq.yaml", GROQ)))
    assert "DMR_REGISTRY is set" in result.stderr
    assert user_registry_path().exists()


def test_export_round_trips(tmp_path):
    run("load", str(write(tmp_path / "groq.yaml", GROQ)))
    reset_default_registry()
    fingerprint = default_registry().fingerprint
    text = run("export").stdout
    assert ModelRegistry.from_dict(yaml.safe_load(text)).fingerprint == fingerprint
    out = tmp_path / "snapshot.yaml"
    run("export", "--output", str(out))
    run("reset")
    run("load", str(out), "--replace")
    reset_default_registry()
    assert default_registry().fingerprint == fingerprint


def test_export_to_an_unwritable_place_exits_1(tmp_path):
    result = run("export", "-o", str(tmp_path / "no-dir" / "x.yaml"), ok=False)
    assert result.exit_code == 1


def test_reset_removes_the_saved_registry(tmp_path):
    run("load", str(write(tmp_path / "groq.yaml", GROQ)), "--replace")
    assert "removed" in run("reset").stdout
    assert not user_registry_path().exists()
    assert "google" in default_registry().providers()
    assert "no saved registry" in run("reset").stdout


def test_concurrent_loads_keep_every_provider(tmp_path):
    expected = []
    for round_ in range(5):
        names = [f"p{round_}w{worker}" for worker in range(3)]
        expected += names
        documents = {name: f"version: '1'\nproviders: {{{name}: {{tiers: {{low: m}}}}}}\n" for name in names}
        jobs = {name: [str(write(tmp_path / f"{name}.yaml", text))] for name, text in documents.items()}
        load, setup = 'main(["models", "load", args[0]])\n', "from dmr.cli.main import main\n"
        assert run_together(tmp_path / "go", jobs, load, setup) == [0, 0, 0]
    reset_default_registry()
    assert set(expected) <= set(default_registry().providers())


def test_a_broken_saved_registry_says_how_to_recover_and_can_be_replaced_or_reset(tmp_path):
    good = write(tmp_path / "groq.yaml", GROQ)
    run("load", str(good))
    with user_registry_path().open("a", encoding="utf-8") as handle:
        handle.write("garbage: [\n")
    reset_default_registry()
    for args in ([], ["load", str(good)], ["export"]):
        result = run(*args, ok=False)
        assert result.exit_code == 1, result.output
        assert "not valid YAML" in result.stderr
        assert "`dmr models reset` removes it, or `dmr models load --replace FILE`" in result.stderr
    assert "with replace" in run("load", str(good), "--replace").stdout
    assert default_registry().providers() == ["groq"]
    with user_registry_path().open("a", encoding="utf-8") as handle:
        handle.write("garbage: [\n")
    assert "removed" in run("reset").stdout
    assert "google" in default_registry().providers()


def test_a_malformed_url_is_an_error_not_a_traceback(monkeypatch):
    result = run("pull", "https://[::1", ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "'https://[::1' is not a valid URL" in result.stderr
    monkeypatch.setenv("DMR_REGISTRY", "https://[::1")
    result = run(ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "is not a valid URL" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_an_interrupted_export_leaves_the_file_it_overwrites_whole(tmp_path):
    import resource

    run("load", str(write(tmp_path / "groq.yaml", GROQ)))
    saved = user_registry_path()
    before = saved.read_bytes()

    def small_files() -> None:  # like `ulimit -f`: a write past 300 bytes fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    export = ["models", "export", "-o", str(saved)]
    command = [sys.executable, "-c", "from dmr.cli.main import main; main()", *export]
    result = subprocess.run(command, preexec_fn=small_files, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert saved.read_bytes() == before
    assert {p.name for p in saved.parent.iterdir()} == {"registry.yaml", "registry.yaml.lock"}


def test_export_and_load_write_through_a_symlink(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = write(dotfiles / "registry.yaml", CEREBRAS)
    user_registry_path().parent.mkdir(parents=True)
    user_registry_path().symlink_to(target)
    run("load", str(write(tmp_path / "groq.yaml", GROQ)))
    assert user_registry_path().is_symlink()
    assert {"groq", "cerebras"} <= set(yaml.safe_load(target.read_text(encoding="utf-8"))["providers"])
    link = tmp_path / "snapshot.yaml"
    link.symlink_to(write(dotfiles / "snapshot.yaml", "old\n"))
    run("export", "-o", str(link))
    assert link.is_symlink() and "groq" in (dotfiles / "snapshot.yaml").read_text(encoding="utf-8")
    assert sorted(p.name for p in dotfiles.iterdir()) == ["registry.yaml", "snapshot.yaml"]


# -- pull, against a real local https server -------------------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dmr test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


ROUTES = {
    "/groq.yaml": GROQ.encode(),
    "/bad.yaml": BAD.encode(),
    "/big.yaml": b"#" * 3000 + b"\n" + GROQ.encode(),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = ROUTES.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()  # no Content-Length: the size cap must hold while streaming
        try:
            self.wfile.write(body or b"")
        except (ConnectionError, ssl.SSLError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()
    thread.join()


def test_pull_validates_then_persists(https_server):
    base, ca = https_server
    result = run("pull", f"{base}/groq.yaml", "--ca-file", ca, "--replace")
    assert f"loaded {base}/groq.yaml" in result.stdout and "with replace" in result.stdout
    reset_default_registry()
    assert default_registry().providers() == ["groq"]


@pytest.mark.parametrize(
    ("path", "extra", "message"),
    [
        ("/bad.yaml", [], "providers.groq.tiers.ultra: unknown tier"),
        ("/big.yaml", ["--max-bytes", "2000"], "larger than max_bytes=2000"),
        ("/missing.yaml", [], "HTTP 404"),
    ],
)
def test_pull_failures_write_nothing(https_server, path, extra, message):
    base, ca = https_server
    result = run("pull", f"{base}{path}", "--ca-file", ca, *extra, ok=False)
    assert result.exit_code == 1 and message in result.stderr
    assert not user_registry_path().exists()


def test_pull_needs_https_and_a_trusted_certificate(https_server):
    base, _ = https_server
    untrusted = run("pull", f"{base}/groq.yaml", ok=False)
    assert untrusted.exit_code == 1 and "cannot fetch" in untrusted.stderr
    plain = run("pull", base.replace("https://", "http://") + "/groq.yaml", ok=False)
    assert plain.exit_code == 1 and "only https" in plain.stderr
    assert not user_registry_path().exists()
    assert run("pull", ok=False).exit_code == 2
    assert run("pull", f"{base}/groq.yaml", "--max-bytes", "0", ok=False).exit_code == 2
