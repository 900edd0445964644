import io
import json

import pytest

from nself.ui import REDACTED, Output, redact


def make(**kw):
    out, err = io.StringIO(), io.StringIO()
    return Output(stdout=out, stderr=err, **kw), out, err


def test_redact_nested_values_and_secret_keys():
    doc = {"url": "postgres://u:hunter22@db", "list": ["x hunter22 y"], "PASSWORD": "short"}
    assert redact(doc, ["hunter22"], frozenset({"PASSWORD"})) == {
        "url": f"postgres://u:{REDACTED}@db", "list": [f"x {REDACTED} y"], "PASSWORD": REDACTED}


def test_every_output_path_redacts():
    ui, out, err = make(verbosity="debug")
    ui.add_secrets(["s3cr3t-value", "ab"])        # too short to redact safely: ignored
    ui.say("say s3cr3t-value")
    ui.verbose("verbose s3cr3t-value")
    ui.debug("debug s3cr3t-value")
    ui.warn("warn s3cr3t-value")
    ui.error("error s3cr3t-value")
    ui.table(["k", "v"], [["a", "s3cr3t-value"]])
    ui.emit({"v": "s3cr3t-value"}, render=lambda d: ui.say(str(d)))
    ui.say("about")
    text = out.getvalue() + err.getvalue()
    assert "s3cr3t-value" not in text and text.count(REDACTED) == 7
    assert "about" in text


def test_json_mode_prints_one_document_and_moves_text_to_stderr():
    ui, out, err = make(json_mode=True)
    ui.add_secrets(["token-123456"])
    ui.say("progress note")
    ui.table(["a"], [["1"]])
    ui.emit({"token": "token-123456", "n": 1})
    assert json.loads(out.getvalue()) == {"token": REDACTED, "n": 1}
    assert "progress note" in err.getvalue()
    with pytest.raises(RuntimeError):
        ui.emit({})


def test_quiet_prints_only_errors():
    ui, out, err = make(verbosity="quiet")
    ui.say("hello")
    ui.warn("careful")
    ui.table(["a"], [["1"]])
    ui.error("broken")
    assert out.getvalue() == "" and err.getvalue() == "error: broken\n"


def test_plain_table_and_steps_without_a_tty():
    ui, out, _ = make()
    ui.table(["name", "image"], [["postgres", "postgres:16"], ["web", None]])
    ui.step(2, 5, "Applying manifests")
    assert out.getvalue().splitlines() == ["name      image", "postgres  postgres:16", "web",
                                           "[2/5] Applying manifests"]


def test_progress_and_spinner_without_a_tty_are_quiet_unless_verbose():
    ui, out, err = make(verbosity="verbose")
    with ui.spinner("Waiting"):
        pass
    with ui.progress("Uploading", total=2) as advance:
        advance()
        advance()
    assert err.getvalue().splitlines() == ["Waiting ...", "Uploading: 1/2", "Uploading: 2/2"]
    assert out.getvalue() == ""


def test_json_lines_for_watch_modes():
    ui, out, _ = make(json_mode=True)
    ui.event({"a": 1})
    ui.event({"a": 2})
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"a": 1}, {"a": 2}]
