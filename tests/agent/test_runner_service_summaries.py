"""The Runner on a service that has a summarizer: its summaries are the service's (ServiceSummaryHistory).

On every backend with service-level summaries: the summary lands in the
service's summaries table (another service on the same database reads it
with get_session_summary_text, and nothing is put in the session state),
and the model then reads the summary plus only the events after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sessionstore import Key
from sessionstore.agent import LLMSummarizer, Message, Runner, ServiceSummaryHistory, StateSummaryHistory
from sessionstore.agent.summaries import SUMMARY_KEY
from sessionstore.errors import ConfigurationError, InvalidArgumentError
from tests.agent.scripted import ScriptedModel, last_user

APP = "weather-agent"
KEY = Key(APP, "u1", "s1")


def answer(messages: Sequence[Message]) -> str:
    if last_user(messages).startswith("Summarize"):
        said = [m.content for m in messages if m.role == "user" and not m.content.startswith("Summarize")]
        return "SUMMARY: the user said " + ", ".join(said)
    return "ok"


async def test_the_runner_keeps_its_summaries_in_the_services_table(make_service, backend) -> None:
    model = ScriptedModel(answer)
    svc = await make_service(summarizer=LLMSummarizer(model, every_events=4))
    runner = Runner(svc, model, APP, history_events=10)
    assert isinstance(runner.history, ServiceSummaryHistory) and runner.summarizer is svc.options.summarizer
    await runner.run("u1", "s1", "my name is Alice")
    assert await svc.get_session_summary_text(KEY) is None  # 2 events: not yet
    await runner.run("u1", "s1", "I live in Paris")  # 4 events: the summary is written after this turn
    text = "SUMMARY: the user said my name is Alice, I live in Paris"
    assert await svc.get_session_summary_text(KEY) == text
    stored = await svc.get_session(KEY)
    assert SUMMARY_KEY not in stored.state and len(stored.events) == 4  # not in the state; nothing deleted
    if backend.shared_storage:  # the service's summaries table: another service on the database reads it
        assert await (await make_service()).get_session_summary_text(KEY) == text

    await runner.run("u1", "s1", "what is my name?")
    seen = model.seen[-1]
    assert seen[0].role == "system" and text in seen[0].content
    assert [m.content for m in seen[1:]] == ["what is my name?"]  # the summarised events are not sent again
    history = await svc.history_for_model(KEY)
    assert history.summary == text and [e.seq for e in history.events] == [5, 6]


async def test_runner_summarize_writes_through_the_service_and_reads_back_when_up_to_date(make_service) -> None:
    model = ScriptedModel(answer)
    svc = await make_service(summarizer=LLMSummarizer(model, every_events=40))
    runner = Runner(svc, model, APP)
    assert await runner.summarize("u1", "s1") is None  # no such session yet
    await runner.run("u1", "s1", "my name is Alice")
    assert await svc.get_session_summary_text(KEY) is None  # every_events not reached
    text = await runner.summarize("u1", "s1")
    assert text == "SUMMARY: the user said my name is Alice" == await svc.get_session_summary_text(KEY)
    calls = len(model.seen)
    assert await runner.summarize("u1", "s1") == text and len(model.seen) == calls  # nothing new: the stored one
    session = await svc.get_session(KEY)
    assert await runner.history.summary_text(session) == text


async def test_which_store_and_summarizer_the_runner_uses(make_service) -> None:
    model = ScriptedModel(answer)
    mine = LLMSummarizer(model)
    plain = await make_service()
    runner = Runner(plain, model, APP, summarizer=mine)  # a service without summarizer: the runner's own store
    assert isinstance(runner.history, StateSummaryHistory) and runner.summarizer is mine
    assert Runner(plain, model, APP).summarizer is None
    with pytest.raises(ConfigurationError):
        ServiceSummaryHistory(plain)

    summarizing = await make_service(summarizer=mine)
    assert Runner(summarizing, model, APP, summarizer=mine).summarizer is mine  # the same one is fine
    with pytest.raises(InvalidArgumentError, match="its own summarizer"):
        Runner(summarizing, model, APP, summarizer=LLMSummarizer(model))  # another one would be ignored: refused
    history = ServiceSummaryHistory(summarizing)
    session = await summarizing.create_session(KEY)
    with pytest.raises(InvalidArgumentError):
        await history.summarize(session, LLMSummarizer(model), force=True)
    assert await summarizing.get_session_summary_text(KEY) is None  # the refusal stored nothing
