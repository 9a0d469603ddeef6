"""The small commands: presets, init, schema, version and doctor."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

import dmr
import dmr.cli.misc  # attaches the commands to `cli`
from dmr.cli.main import cli
from dmr.config import yaml_schema
from dmr.router import Router

CHECK_LINE = re.compile(r"^\[(OK|WARN|FAIL)\] ([a-z ]+): ")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so that no ./dmr.yaml is picked up or overwritten."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


# -- presets -----------------------------------------------------------------------------------

def test_presets_lists_each_preset_with_its_pii_kinds():
    result = run("presets")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[::2]] == ["fintech", "healthcare", "legal"]
    assert "PII: date_of_birth, health_plan_id, medical_record_number, npi" in lines[3]


def test_presets_json():
    result = run("presets", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["fintech", "healthcare", "legal"]
    healthcare = rows[1]
    assert healthcare["pii_policy"] == {"min_tier": "high", "block": False}
    assert "medical_record_number" in healthcare["pii_patterns"] and healthcare["description"]


# -- init --------------------------------------------------------------------------------------

def test_init_writes_a_loadable_dmr_yaml(in_tmp):
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "wrote dmr.yaml" in result.stdout
    assert Router.from_yaml(in_tmp / "dmr.yaml").config.provider == "google"


def test_init_refuses_to_overwrite_without_force(in_tmp):
    path = in_tmp / "dmr.yaml"
    path.write_text("provider: openai\n", encoding="utf-8")
    result = run("init")
    assert result.exit_code == 1
    assert "dmr.yaml exists; use --force to overwrite it" in result.stderr
    assert path.read_text(encoding="utf-8") == "provider: openai\n"
    forced = run("init", "--force")
    assert forced.exit_code == 0, forced.output
    assert path.read_text(encoding="utf-8").startswith("# dmr.yaml")


def test_init_to_another_path(in_tmp):
    result = run("init", "--path", "conf.yaml")
    assert result.exit_code == 0, result.output
    assert (in_tmp / "conf.yaml").is_file() and not (in_tmp / "dmr.yaml").exists()


# -- schema and version ------------------------------------------------------------------------

def test_schema_prints_the_dmr_yaml_schema():
    result = run("schema")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == yaml_schema()


def test_schema_to_a_file(in_tmp):
    result = run("schema", "--output", "schema.json")
    assert result.exit_code == 0, result.output
    assert json.loads((in_tmp / "schema.json").read_text(encoding="utf-8")) == yaml_schema()


def test_version_json():
    result = run("version", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["dmr"] == dmr.__version__
    assert re.fullmatch(r"3\.\d+\.\d+.*", info["python"])
    assert info["dependencies"]["pydantic"] and "tiktoken" in info["dependencies"]
    # An optional part is listed when installed (the test extra installs starlette), not otherwise.
    assert info["dependencies"]["starlette"] == importlib.metadata.version("starlette")
    core = {"dynamic-model-router", "pydantic", "PyYAML", "click", "httpx", "platformdirs", "tqdm", "tiktoken", "numpy"}
    assert core <= set(info["dependencies"])
    assert all(found is not None for dist, found in info["dependencies"].items() if dist not in core)


def test_version_text():
    result = run("version")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"dmr {dmr.__version__} on Python ")
    assert re.search(r"^  pydantic\s+\d", result.stdout, re.MULTILINE)


# -- doctor ------------------------------------------------------------------------------------

def check_lines(output: str) -> dict[str, str]:
    """{check name: status} from the doctor's output."""
    found = {}
    for line in output.splitlines():
        match = CHECK_LINE.match(line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_doctor_passes_on_a_working_install():
    result = run("doctor")
    assert result.exit_code == 0, result.output
    checks = check_lines(result.stdout)
    assert {"python", "keyword packs", "presets", "model registry", "config", "classify"} <= set(checks)
    assert "FAIL" not in checks.values()
    assert checks["config"] == "OK" and checks["classify"] == "OK"
    assert re.search(r"^\d+ checks: 0 failed, \d+ warnings$", result.stdout, re.MULTILINE)
    # The shipped head carries its difficulty output, and doctor says so.
    assert re.search(r"layer 3: .*head\.npz.*, difficulty output$", result.stdout, re.MULTILINE)


def test_doctor_warns_about_unset_provider_keys(monkeypatch):
    for name in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = run("doctor")
    assert result.exit_code == 0
    assert check_lines(result.stdout)["provider keys"] == "WARN"
    assert "not set: google (GOOGLE_API_KEY)" in result.stdout


def test_doctor_fails_on_a_broken_config(in_tmp):
    (in_tmp / "broken.yaml").write_text("bogus: 1\nescalation_threshold: 5\n", encoding="utf-8")
    result = run("doctor", "--config", "broken.yaml")
    assert result.exit_code == 1
    checks = check_lines(result.stdout)
    assert checks["config"] == "FAIL" and checks["python"] == "OK"
    assert "bogus: unknown option" in result.stdout
    assert re.search(r"^\d+ checks: 1 failed, \d+ warnings$", result.stdout, re.MULTILINE)


def test_doctor_json(in_tmp):
    (in_tmp / "broken.yaml").write_text("version: 7\n", encoding="utf-8")
    result = run("doctor", "--json", "--config", "broken.yaml")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["config"]["status"] == "FAIL" and "unsupported dmr.yaml version 7" in checks["config"]["detail"]
    assert all(c["status"] in ("OK", "WARN", "FAIL") for c in checks.values())


def test_doctor_checks_the_configured_outcome_model(in_tmp):
    from dmr.ml.outcomes import OutcomeModel

    prompts = [f"{'prove the theorem' if i % 2 else 'say hello'} number {i}" for i in range(24)]
    scores = [{"low": 0.0 if i % 2 else 1.0, "high": 1.0} for i in range(24)]
    path = OutcomeModel(encoder=None, l2=1e-3).fit(prompts, scores, models=["low", "high"]).save(in_tmp / "om.npz")
    (in_tmp / "dmr.yaml").write_text("quality_target: 0.9\noutcome_model: om.npz\n", encoding="utf-8")
    result = run("doctor")
    assert re.search(r"^\[OK\] outcome model: \S*om\.npz: low, high$", result.stdout, re.MULTILINE)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["head_digest"] = "0123456789abcdef"
    path.with_suffix(".json").write_text(json.dumps(meta))
    result = run("doctor")
    assert check_lines(result.stdout)["outcome model"] == "WARN" and "another Layer 3 head" in result.stdout
    path.write_bytes(b"broken")
    result = run("doctor")
    assert result.exit_code == 1 and check_lines(result.stdout)["outcome model"] == "FAIL"


def test_doctor_checks_a_dmr_yaml_in_the_current_folder(in_tmp):
    (in_tmp / "dmr.yaml").write_text("provider: anthropic\n", encoding="utf-8")
    result = run("doctor")
    assert result.exit_code == 0
    assert "[OK] config: dmr.yaml is valid" in result.stdout


# -- QA: writing into a missing folder, naming a crashed check -------------------------------------

def test_init_and_schema_create_a_missing_folder(in_tmp):
    assert run("init", "--path", str(in_tmp / "new" / "dmr.yaml")).exit_code == 0
    assert Router.from_yaml(in_tmp / "new" / "dmr.yaml").config is not None
    assert run("schema", "--output", str(in_tmp / "other" / "schema.json")).exit_code == 0
    assert json.loads((in_tmp / "other" / "schema.json").read_text(encoding="utf-8")) == yaml_schema()


def test_doctor_names_a_check_that_crashes(in_tmp, monkeypatch):
    def crash(path):
        raise RuntimeError("boom")

    monkeypatch.setattr("dmr.doctor._layer2", crash)
    result = run("doctor")
    assert "[FAIL] layer 2: RuntimeError: boom" in result.stdout
    assert "lambda" not in result.stdout


def test_doctor_reports_a_hook_module_failing_on_import(in_tmp, monkeypatch):
    (in_tmp / "dmr_qa_badmod.py").write_text('raise RuntimeError("boom")\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(in_tmp))
    (in_tmp / "h.yaml").write_text('post_classify_hooks: ["dmr_qa_badmod:x"]\n', encoding="utf-8")
    result = run("doctor", "--config", "h.yaml")
    assert result.exit_code == 1
    assert "[FAIL] config:" in result.stdout and "post_classify_hooks.0: cannot import" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["eval", "--outcomes", "{bad}", "--json"], "not valid JSON"),
    (["train", "--outcomes", "{bad}", "-o", "{out}", "--json"], "not valid JSON"),
    (["models", "--json", "--provider", "nope"], "unknown provider 'nope'"),
    (["classify", "--json", " "], "task is empty"),
])
def test_with_json_every_command_prints_its_error_as_json_on_stdout(tmp_path, args, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    args = [a.format(bad=bad, out=tmp_path / "model.npz") for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert message in json.loads(result.stdout)["error"] and result.stderr == ""
    without = CliRunner().invoke(cli, [a for a in args if a != "--json"])
    assert without.exit_code == 1 and without.stdout == "" and message in without.stderr


# -- QA: the doctor's config hint, the log dmr.yaml names, a broken log ------------------------------

@pytest.mark.parametrize("name, text, message", [
    ("missing.yaml", None, "cannot read missing.yaml"),
    ("bad.yaml", "layer3_enabled: [\n", "bad.yaml is not valid YAML"),
    ("latin1.yaml", b"provider: caf\xe9\n", "latin1.yaml is not UTF-8"),
])
def test_doctor_says_what_is_wrong_with_a_config_file_that_does_not_load(in_tmp, name, text, message):
    if text is not None:
        (in_tmp / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    result = run("doctor", "--json", "--config", name)
    assert result.exit_code == 1
    config = {c["name"]: c for c in json.loads(result.stdout)}["config"]
    assert config["status"] == "FAIL" and config["detail"].startswith(message)
    assert "keys listed above" not in config["fix"]  # there are no keys listed: the file did not load


def test_doctor_reports_the_decision_log_that_dmr_yaml_names(in_tmp):
    (in_tmp / "dmr.yaml").write_text("decision_logger: logs/decisions.jsonl\n", encoding="utf-8")
    with Router.from_yaml(in_tmp / "dmr.yaml") as router:
        router.classify("Hello")
        router.classify("Hi")
    checks = {c["name"]: c for c in json.loads(run("doctor", "--json").stdout)}
    assert checks["decision log"]["status"] == "OK"
    assert checks["decision log"]["detail"].endswith("decisions.jsonl: 2 records, none dropped")
    (in_tmp / "dmr.yaml").write_text("decision_logger: postgresql://u:secret@db.invalid/x\n", encoding="utf-8")
    log = {c["name"]: c for c in json.loads(run("doctor", "--json").stdout)}["decision log"]
    assert log["status"] == "OK" and "not checked" in log["detail"] and "secret" not in log["detail"]


def test_doctor_on_a_decision_log_that_is_not_sqlite_says_what_to_do(in_tmp):
    from dmr.store import default_log_path

    default_log_path().parent.mkdir(parents=True, exist_ok=True)
    default_log_path().write_bytes(b"")  # an empty database: nothing logged yet
    log = {c["name"]: c for c in json.loads(run("doctor", "--json").stdout)}["decision log"]
    assert log["status"] == "OK" and log["detail"].endswith("0 records, none dropped")
    default_log_path().write_text("not a database\n", encoding="utf-8")
    log = {c["name"]: c for c in json.loads(run("doctor", "--json").stdout)}["decision log"]
    assert log["status"] == "FAIL" and "move the file aside" in log["fix"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("args, name", [(["init", "--force"], "dmr.yaml"), (["schema", "--output", "schema.json"],
                                                                               "schema.json")])
def test_an_interrupted_write_leaves_the_file_it_overwrites_whole(in_tmp, args, name):
    import resource

    (in_tmp / name).write_text("# my own, edited by hand\n", encoding="utf-8")

    def small_files() -> None:  # like `ulimit -f`: a write past 300 bytes fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    command = [sys.executable, "-c", "from dmr.cli.main import main; main()", *args]
    result = subprocess.run(command, preexec_fn=small_files, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and f"cannot write {name}" in result.stderr
    assert (in_tmp / name).read_text(encoding="utf-8") == "# my own, edited by hand\n"
    assert [p.name for p in in_tmp.iterdir()] == [name]  # no temporary file left behind


def test_init_under_a_path_whose_folder_is_a_file_says_so(tmp_path):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    result = run("init", "--path", str(tmp_path / "afile" / "dmr.yaml"))
    assert result.exit_code == 1 and "afile is a file, not a folder" in result.stderr
