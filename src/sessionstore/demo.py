"""The demo: a short scripted conversation in ``sessionstore chat``, then how to go on by hand.

    sessionstore demo [--url sqlite:///.sessionstore/chat.db]
    python -m sessionstore demo [--url …]        # the same, without the script on PATH (make demo)

It drives the real chat (the same code as ``sessionstore chat`` with piped
input) on the chat's default SQLite file, so ``sessionstore chat``
afterwards resumes the demo's conversation. Run it twice: the second recap
includes the first run's messages, read back from the file. The command
line (sessionstore.cli) is the entry point; this module holds the script
and the closing words.
"""

from __future__ import annotations

import sys

DEMO_USER = "demo"

SCRIPT = [
    "my name is Alice",
    "/title Getting to know each other",
    "/use demo-trip",
    "I'm planning a trip to Japan; my favourite city is Kyoto",
    "/title Trip to Japan",
    "/sessions",
    "/use demo-intro",
    "what is my name?",
    "/history",
]
"""The demo's lines, typed into the chat one by one (it starts in session demo-intro)."""


def afterword(url: str, default_url: str, offline: bool) -> str:
    """What the demo prints at the end: where the data is and how to talk to the chat yourself."""
    where = "" if url == default_url else f" --url {url}"
    lines = [
        "",
        f"That was a scripted conversation; every turn is stored in {url}.",
        "Talk to it yourself (it resumes the demo's most recent session):",
        f"    .venv/bin/python -m sessionstore chat --user {DEMO_USER}{where}",
        f"    (or `sessionstore chat --user {DEMO_USER}{where}` with the venv activated; without --user you get your own sessions)",
        "Try: what is my name?  /sessions  /use demo-trip  /history  /new  /help  /exit",
    ]
    if offline:
        lines.append("No OPENAI_API_KEY is set, so you talk to the offline model, which only answers from the stored "
                     "session; set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server) for a real model.")
    return "\n".join(lines)


if __name__ == "__main__":  # the old `python -m sessionstore.demo`: say where the demo went
    sys.exit("the demo is a command now: python -m sessionstore demo [--url URL]")
