"""Settings of every `sijill` command: command line > environment variable > config file >
default, the config file's tables and keys, its errors (exit 2, one line naming the file and the
key), where the file is found, `sijill config show`; and, over the whole command tree, that
every command's help has an example and docs/cli.md documents every option."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from cli.config import reference_markdown, walk
from cli.main import app

SIJILL = str(Path(sys.executable).with_name("sijill"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SIJILL_* variable from the caller, and a working directory without sijill.toml."""
    for name in list(os.environ):
        if name.startswith("SIJILL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}, **extra}


def _sijill(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIJILL, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def _settings(*args: str, env: dict[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """`sijill [args...]` ending in `config show COMMAND`: option key -> (value, source)."""
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return {s["key"]: (s["value"], s["source"]) for s in json.loads(result.stdout)["settings"]}


def _one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_flag_over_environment_over_config_over_default(tmp_path: Path) -> None:
    config = tmp_path / "sijill.toml"
    config.write_text('rpc = "http://config:1"\nport = 8700\n')
    # The parser's own resolution, flags aside: environment > config file > default.
    settings = _settings("config", "show", "serve", env={"SIJILL_RPC_URL": "http://env:1"})
    assert settings["rpc"] == ("http://env:1", "environment")
    assert settings["port"] == (8700, "config")
    assert settings["host"] == ("127.0.0.1", "default")
    assert settings["agency"] == (None, "missing")
    # And a real command: the value it uses is named in its error.
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps({"format": "sijill-deployment/1"}))
    base = ["agency", "list", "--deployment", str(deployment)]
    cases = [
        ([], {}, "http://127.0.0.1:1"),
        ([], {"SIJILL_RPC_URL": "http://127.0.0.1:2"}, "http://127.0.0.1:2"),
        (["--rpc", "http://127.0.0.1:3"], {"SIJILL_RPC_URL": "http://127.0.0.1:2"}, "http://127.0.0.1:3"),
    ]
    config.write_text('rpc = "http://127.0.0.1:1"\n')
    for flags, env, used in cases:
        result = runner.invoke(app, [*base, *flags], env=env)
        _one_line_error(result, f"no JSON-RPC node answers at {used}")


def test_config_supplies_required_options_and_a_table_overrides_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "sijill.toml").write_text(
        'data_dir = "everywhere"\n[officer]\ndata_dir = "officers"\n[officer.revoke]\ndata-dir = "revoke"\n'
    )
    # officer commands need --data-dir; the file gives it, the deepest table winning.
    for command, directory in (("list", "officers"), ("revoke", "revoke")):
        args = ["officer", command] + (["0123abcd"] if command == "revoke" else [])
        _one_line_error(runner.invoke(app, args), f"there is no node in {directory}")
    assert _settings("config", "show", "node", "run")["data_dir"] == ("everywhere", "config")
    # The flag still wins over every table.
    _one_line_error(runner.invoke(app, ["officer", "list", "--data-dir", "flag"]), "there is no node in flag")


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "repd.toml").write_text('deployment = "deployment.json"\ndata_dir = "/var/lib/repd"\nrpc = "x"\n')
    settings = _settings("--config", str(etc / "repd.toml"), "config", "show", "node", "run")
    assert settings["deployment"][0] == str(etc / "deployment.json")
    assert settings["data_dir"][0] == "/var/lib/repd"
    assert settings["rpc"][0] == "x"  # not a path


def test_a_boolean_flag_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "sijill.toml").write_text("[serve]\naccess_log = true\n[agency]\nas_json = true\n")
    assert _settings("config", "show", "serve")["access_log"] == (True, "config")
    assert _settings("config", "show", "agency", "proposals")["as_json"] == (True, "config")
    assert _settings("config", "show", "officer", "list")["as_json"] == (False, "default")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("prot = 1\n", ["unknown key 'prot' at the top level", "no sijill command has an option named so"]),
        ("[serve]\nprot = 1\n", ["unknown key 'prot' in [serve]", "`sijill serve` has no option named so"]),
        ("[node]\nport = 1\n", ["unknown key 'port' in [node]", "no command under `sijill node`"]),
        ("[rpc]\nx = 1\n", ["'rpc' at the top level is an option"]),
        ("serve = 1\n", ["'serve' at the top level is a command", "as a table [serve]"]),
        ('rpc = "a"\nrpc = "b"\n', ["is not valid TOML", "line 2"]),
        ("[serve\n", ["is not valid TOML"]),
    ],
)
def test_config_file_mistakes_are_one_line_and_exit_2(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = runner.invoke(app, ["--config", str(path), "config", "show", "serve"])
    _one_line_error(result, str(path), *needles)


def test_the_file_from_config_option_env_or_working_directory(tmp_path: Path) -> None:
    (tmp_path / "sijill.toml").write_text("port = 1001\n")
    (tmp_path / "env.toml").write_text("port = 1002\n")
    (tmp_path / "flag.toml").write_text("port = 1003\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    show = ("config", "show", "serve", "--json")

    def port(done: subprocess.CompletedProcess[str]) -> Any:
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        return document["config"], {s["key"]: s["value"] for s in document["settings"]}["port"]

    assert port(_sijill(*show, cwd=tmp_path)) == ("sijill.toml", 1001)
    assert port(_sijill(*show, cwd=elsewhere)) == (None, 8600)
    assert port(_sijill(*show, cwd=tmp_path, SIJILL_CONFIG="env.toml")) == ("env.toml", 1002)
    flag = _sijill("--config", "flag.toml", *show, cwd=tmp_path, SIJILL_CONFIG="env.toml")
    assert port(flag) == ("flag.toml", 1003)
    missing = _sijill(*show, cwd=tmp_path, SIJILL_CONFIG="nowhere.toml")
    assert (
        missing.returncode == 2 and missing.stderr.strip() == "error: config file nowhere.toml does not exist"
    )
    # A broken file breaks every command, run as the real program too, with one line.
    (tmp_path / "sijill.toml").write_text("port = \n")
    broken = _sijill("officer", "list", "--data-dir", "x", cwd=tmp_path)
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1
    assert "sijill.toml is not valid TOML" in broken.stderr and "Traceback" not in broken.stderr


def test_config_show_without_a_command_lists_what_the_environment_and_file_set(tmp_path: Path) -> None:
    (tmp_path / "sijill.toml").write_text("[node.run]\nmax_age = 7.5\n")
    result = runner.invoke(app, ["config", "show", "--json"], env={"SIJILL_AGENCY": "REPD"})
    assert result.exit_code == 0, result.output
    rows = {
        (s["command"], s["key"]): (s["value"], s["source"], s["origin"])
        for s in json.loads(result.stdout)["settings"]
    }
    assert rows[("node run", "max_age")] == (7.5, "config", "sijill.toml [node.run]")
    assert rows[("node run", "agency")] == ("REPD", "environment", "SIJILL_AGENCY")
    assert rows[("serve", "agency")][1] == "environment"
    assert all(source in ("config", "environment") for _, source, _ in rows.values())
    text = runner.invoke(app, ["config", "show", "node", "run"])
    assert "--max-age" in text.stdout and "config: sijill.toml [node.run]" in text.stdout
    _one_line_error(runner.invoke(app, ["config", "show", "node"]), "is a group of commands")
    _one_line_error(
        runner.invoke(app, ["config", "show", "nodes", "run"]), "there is no command `sijill nodes`"
    )


def _leaves() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    return [(words, c) for words, c in walk(root) if words and not getattr(c, "commands", None)]


def test_every_command_has_help_with_an_example() -> None:
    """Walks the whole command tree, so commands added later are covered too."""
    missing = []
    for words, _ in _leaves():
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        if "Example" not in result.stdout:
            missing.append(" ".join(words))
    assert not missing, f"--help without an example: {missing}"


def test_docs_cli_md_documents_every_command_and_option() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    undocumented = []
    for words, command in _leaves():
        section = re.search(
            rf"### `sijill {re.escape(' '.join(words))}`\n(.*?)(?=\n### |\Z)", docs, re.DOTALL
        )
        if section is None:
            undocumented.append(f"sijill {' '.join(words)}")
            continue
        for option in command.params:
            if option.param_type_name == "option" and f"`{option.opts[0]}`" not in section.group(1):
                undocumented.append(f"sijill {' '.join(words)} {option.opts[0]}")
    assert not undocumented, (
        f"docs/cli.md lacks {undocumented}: regenerate its reference with "
        "`.venv/bin/sijill config reference --write docs/cli.md`"
    )
    assert reference_markdown(typer.main.get_command(app)).count("### ") == len(_leaves())
