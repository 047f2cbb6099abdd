"""``sessionstore chat`` end to end: in a real pseudo-terminal (pexpect), with piped stdin, against a
real local chat-completions server, and its one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chat_server import chat_server

ROOT = Path(__file__).resolve().parent.parent
pexpect = pytest.importorskip("pexpect", reason="pip install pexpect (in the dev extra) to drive the chat in a terminal")


def chat_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}", NO_COLOR="1", TERM="xterm", COLUMNS="200", **extra)
    return env


def piped(args: list[str], script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sessionstore", "chat", *args], input=script, capture_output=True,
                          text=True, cwd=cwd, env=chat_env(**env), timeout=120, check=False)


def test_the_chat_in_a_terminal_two_sessions_switch_list_history_title_delete_exit_and_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"

    def spawn(*args: str):
        child = pexpect.spawn(sys.executable, ["-m", "sessionstore", "chat", "--url", url, "--user", "alice", *args],
                              cwd=str(tmp_path), env=chat_env(), encoding="utf-8", timeout=60, dimensions=(50, 200))
        child.expect("model: offline model")
        return child

    def say(line: str, *expected: str) -> None:
        child.expect_exact("you> ")
        child.sendline(line)
        for text in expected:
            child.expect(text)

    child = spawn("--session", "trip")
    child.expect("session trip")
    say("I'm planning a trip to Japan", "offline> .*not an LLM")
    say("my name is Alice", "Noted: your name is Alice")
    say("/new", r"new session (chat-[0-9a-f]{8}) \(previous: trip\)")
    second = child.match.group(1)
    say("I need help with Python", "offline> ")
    say("/sessions", rf"\* {second}  \"I need help with Python\"", r"  trip  \"I'm planning a trip to Japan\"")
    say("/use trip", "switched to session trip")
    # (pexpect's patterns are DOTALL: a trailing ".*" would swallow whatever of the recap had arrived)
    say("/history", r"Recap \(offline model, from this session's stored events\):", r"1\. I'm planning a trip to Japan",
        r"2\. my name is Alice", "your name is Alice")
    say("/title Trip planning", 'session trip is now titled "Trip planning"')
    say(f"/delete {second}", f"deleted session {second}")
    say("/delete nosuch", "error: no session 'nosuch' for user 'alice'")
    say("/frobnicate", r"error: unknown command /frobnicate \(type /help")
    say("/sessions", r'\* trip  "Trip planning"')
    assert second not in child.before + child.after
    say("/exit", "bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn()  # a new process: resumes the most recent session, and knows the name from the database
    child.expect('resumed your most recent session trip "Trip planning"')
    child.expect_exact("you> ")
    child.send("is my name?")
    child.send("\x01")  # Ctrl-A: line editing moves to the start of the line
    child.send("what \r")
    child.expect("Your name is Alice.")
    say("/use newone", "switched to new session newone")
    child.expect_exact("you> ")
    child.sendeof()  # Ctrl-D leaves
    child.expect("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")


SCRIPT = """\
my name is Alice
what is my name?
/title Names
/sessions
/nope
/use bad\tid
/summary
/history
/exit
never read
"""


def test_piped_stdin_runs_a_script_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    done = piped(["--url", f"sqlite:///{tmp_path / 'c.db'}", "--user", "bob", "--session", "s1"], SCRIPT, tmp_path)
    out = done.stdout
    assert "you> my name is Alice\noffline> Noted: your name is Alice." in out
    assert "you> what is my name?\noffline> Your name is Alice." in out
    assert '* s1  "Names"  updated ' in out
    assert "error: unknown command /nope" in out
    assert re.search(r"error: session_id contains the control character U\+0009", out)
    assert "summary of s1 (stored with the session):\nRecap (offline model" in out
    assert "never read" not in out and out.rstrip().endswith("bye")
    assert "Traceback" not in out + done.stderr
    assert done.returncode == 1  # a script that hit errors says so


def test_piped_script_without_errors_exits_0_and_the_default_database_is_installed_in_the_working_directory(tmp_path: Path) -> None:
    done = piped([], "hello\n", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / ".sessionstore" / "chat.db").exists()
    assert "sessionstore chat on sqlite:///.sessionstore/chat.db" in done.stdout


@pytest.mark.parametrize(("args", "code"), [
    (["--url", "postgresql://nobody:hunter2@127.0.0.1:9/none"], 1),  # a runtime failure
    (["--url", "nosuchdb://x"], 2),  # usage errors
    (["--user", ""], 2),
    (["--session-ttl", "forever"], 2),
])
def test_bad_options_and_unreachable_databases_are_one_line(tmp_path: Path, args: list[str], code: int) -> None:
    done = piped(args, "hello\n", tmp_path)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_an_existing_sqlite_file_without_the_schema_is_not_migrated_behind_the_users_back(tmp_path: Path) -> None:
    (tmp_path / "other.db").write_bytes(b"")
    done = piped(["--url", f"sqlite:///{tmp_path / 'other.db'}"], "hello\n", tmp_path)
    assert done.returncode == 1 and "sessionstore db upgrade" in done.stderr


@pytest.mark.parametrize("stream", [True, False])
def test_the_chat_talks_to_an_openai_compatible_server(tmp_path: Path, stream: bool) -> None:
    pytest.importorskip("openai", reason="pip install 'sessionstore[openai]'")
    with chat_server() as server:
        args = ["--url", f"sqlite:///{tmp_path / 'c.db'}", "--user", "carol", "--session", "s1", "--model", "test-model"]
        done = piped(args + ([] if stream else ["--no-stream"]), "How's the weather in Shanghai?\nWhat about Beijing?\n",
                     tmp_path, OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "model: test-model (OpenAI-compatible)" in done.stdout
    assert "test-model> [2 messages] you said: How's the weather in Shanghai?" in done.stdout
    assert "test-model> [4 messages] you said: What about Beijing?" in done.stdout  # system, user, assistant, user
    second = server.requests[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert bool(second.get("stream")) is stream
    assert {t["function"]["name"] for t in second["tools"]} >= {"sessions_list", "sessions_metadata_set"}


def test_a_failing_model_is_one_error_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    pytest.importorskip("openai", reason="pip install 'sessionstore[openai]'")
    from tests.chat_server import Answer

    with chat_server() as server:
        server.script.append(Answer(status=500))
        server.script.append(Answer(status=500))
        server.script.append(Answer(status=500))
        done = piped(["--url", f"sqlite:///{tmp_path / 'c.db'}", "--session", "s1", "--no-stream"], "first\nsecond\n",
                     tmp_path, OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url)
    assert re.search(r"error: model 'gpt-4o-mini' at http://127\.0\.0\.1:\d+/v1/: HTTP 500", done.stdout), done.stdout
    assert "you said: second" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_the_chat_runs_the_session_tools_a_model_calls(tmp_path: Path) -> None:
    pytest.importorskip("openai", reason="pip install 'sessionstore[openai]'")
    from tests.chat_server import Answer

    with chat_server() as server:
        server.script += [Answer("", tool_calls=[{"id": "call_9", "name": "sessions_metadata_set",
                                                  "arguments": '{"title": "Renamed by the model", "user_id": "mallory"}'}]),
                          Answer("", tool_calls=[{"id": "call_10", "name": "sessions_metadata_set",
                                                  "arguments": '{"title": "Renamed by the model"}'}]),
                          Answer("Done: renamed.")]
        done = piped(["--url", f"sqlite:///{tmp_path / 'c.db'}", "--user", "dave", "--session", "s1", "--model", "m"],
                     "please rename this session\n/sessions\n", tmp_path, OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "m> Done: renamed." in done.stdout and '* s1  "Renamed by the model"' in done.stdout
    refused = [m for m in server.requests[1]["messages"] if m["role"] == "tool"][0]
    assert refused["tool_call_id"] == "call_9" and "unknown argument(s) 'user_id'" in refused["content"]
    done_call = [m for m in server.requests[2]["messages"] if m["role"] == "tool"][-1]
    assert '"title": "Renamed by the model"' in done_call["content"].replace('":"', '": "')
