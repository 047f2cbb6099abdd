"""The offline model: answers from the session's stored history and state, says it is no LLM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sessionstore.agent import Message, OfflineModel
from sessionstore.agent.offline import FACTS_KEY

ROOT = Path(__file__).resolve().parents[2]


def answer(*said: str, state: dict | None = None) -> str:
    messages = [Message("user", s) if i % 2 == 0 else Message("assistant", s) for i, s in enumerate(said)]
    return OfflineModel().answer(messages, state or {}).text


def test_it_stores_what_it_is_told_in_the_session_state() -> None:
    reply = OfflineModel().answer([Message("user", "Hi, my name is Alice and my favourite colour is blue.")], {})
    assert reply.state_delta == {FACTS_KEY: {"name": "Alice", "favourite colour": "blue"}}
    assert "Alice" in reply.text and "blue" in reply.text


def test_it_answers_from_the_state() -> None:
    assert answer("what is my name?", state={FACTS_KEY: {"name": "Alice"}}) == "Your name is Alice."
    assert answer("Who am I?", state={FACTS_KEY: {"name": "Bob"}}) == "Your name is Bob."


def test_it_answers_from_the_history_when_the_state_has_nothing() -> None:
    assert answer("call me Ishmael", "Noted.", "what's my name") == "Your name is Ishmael."


def test_it_says_when_it_does_not_know() -> None:
    assert "haven't told me your name" in answer("what is my name?")


def test_anything_else_gets_an_honest_reply() -> None:
    reply = answer("What's the capital of France?")
    assert "not an LLM" in reply and "OPENAI_API_KEY" in reply
    assert "Paris" not in reply


def test_a_recap_lists_what_was_said_from_the_history() -> None:
    reply = answer("I'm planning a trip to Japan", "ok", "my name is Alice", "ok", "Please recap our conversation so far.",
                   state={FACTS_KEY: {"name": "Alice"}})
    assert reply.startswith("Recap (offline model, from this session's stored events)")
    assert "1. I'm planning a trip to Japan" in reply and "2. my name is Alice" in reply and "your name is Alice" in reply
    assert "recap our conversation" not in reply.split("\n", 1)[1]


async def test_streaming_gives_the_same_text_and_delta() -> None:
    chunks = [c async for c in OfflineModel().stream([Message("user", "my name is Alice")])]
    assert "".join(c.text for c in chunks) == "Noted: your name is Alice. I've stored it in this session."
    assert chunks[-1].state_delta == {FACTS_KEY: {"name": "Alice"}}


SCRIPT = """
import asyncio, sys
from sessionstore import open_service
from sessionstore.agent import OfflineModel, Runner

async def main(url, message):
    async with open_service(url, auto_migrate=True) as svc:
        print(await Runner(svc, OfflineModel(), "app", history_events=1).run("alice", "s1", message))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_a_new_process_knows_the_name_from_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}

    def run(message: str) -> str:
        done = subprocess.run([sys.executable, "-c", SCRIPT, url, message], capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run("my name is Alice") == "Noted: your name is Alice. I've stored it in this session."
    # history_events=1: the second process's model sees only the question; the name comes from the stored state
    assert run("what is my name?") == "Your name is Alice."
