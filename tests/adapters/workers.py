"""Code the adapter tests run in a second Python process (python -m tests.adapters.workers ...).

``adk-append URL APP USER SESSION N TAG``: load the session through the ADK
adapter once, then append N events through that one (soon stale) object.
``agents-add URL SESSION N TAG``: add N two-item batches through the Agents
SDK adapter. ``langchain-add URL SESSION N TAG``: add N two-message batches
through the LangChain adapter (sync methods). ``*-read``: print the history
as JSON, from a fresh process (a restart).
"""

from __future__ import annotations

import asyncio
import json
import sys


async def adk_append(url: str, app: str, user: str, session_id: str, n: int, tag: str) -> None:
    from google.adk.events.event import Event
    from google.genai import types

    from sessionstore.adk import SessionStoreSessionService

    async with SessionStoreSessionService(url) as svc:
        session = await svc.get_session(app_name=app, user_id=user, session_id=session_id)
        assert session is not None
        for i in range(n):
            event = Event(
                author=tag, invocation_id=f"{tag}-{i}",
                content=types.Content(role="user", parts=[types.Part(text=f"{tag}-{i}")]),
                actions={"state_delta": {f"{tag}-{i}": i}},
            )
            await svc.append_event(session, event)


async def adk_read(url: str, app: str, user: str, session_id: str) -> None:
    from sessionstore.adk import SessionStoreSessionService

    async with SessionStoreSessionService(url) as svc:
        session = await svc.get_session(app_name=app, user_id=user, session_id=session_id)
        assert session is not None
        print(json.dumps({"events": [e.model_dump(mode="json", exclude_none=True) for e in session.events], "state": session.state}))


async def agents_add(url: str, session_id: str, n: int, tag: str) -> None:
    from sessionstore.openai_agents import SessionStoreSession

    session = SessionStoreSession(session_id, url)
    try:
        for i in range(n):
            await session.add_items([
                {"role": "user", "content": f"{tag}-{i}-a"}, {"role": "assistant", "content": f"{tag}-{i}-b"},
            ])
    finally:
        await session.close()


async def agents_read(url: str, session_id: str) -> None:
    from sessionstore.openai_agents import SessionStoreSession

    session = SessionStoreSession(session_id, url)
    try:
        print(json.dumps(await session.get_items()))
    finally:
        await session.close()


def langchain_add(url: str, session_id: str, n: int, tag: str) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from sessionstore.langchain import SessionStoreChatMessageHistory

    history = SessionStoreChatMessageHistory(session_id, url)
    try:
        for i in range(n):
            history.add_messages([HumanMessage(f"{tag}-{i}-a"), AIMessage(f"{tag}-{i}-b")])
    finally:
        history.close()


def langchain_read(url: str, session_id: str) -> None:
    from langchain_core.messages import messages_to_dict

    from sessionstore.langchain import SessionStoreChatMessageHistory

    history = SessionStoreChatMessageHistory(session_id, url)
    try:
        print(json.dumps(messages_to_dict(history.messages)))
    finally:
        history.close()


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "adk-append":
        asyncio.run(adk_append(args[0], args[1], args[2], args[3], int(args[4]), args[5]))
    elif command == "adk-read":
        asyncio.run(adk_read(*args))
    elif command == "agents-add":
        asyncio.run(agents_add(args[0], args[1], int(args[2]), args[3]))
    elif command == "agents-read":
        asyncio.run(agents_read(*args))
    elif command == "langchain-add":
        langchain_add(args[0], args[1], int(args[2]), args[3])
    elif command == "langchain-read":
        langchain_read(*args)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
