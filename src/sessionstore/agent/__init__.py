"""The agent side of sessionstore: a `Runner`, the `ChatModel` protocol and its models, session tools.

    from sessionstore.agent import Runner, OfflineModel, OpenAIChatModel, SessionTools

This layer sits on top of the service: it imports the core modules (the
contract, records, errors), never a backend, so it runs on every backend.
`OpenAIChatModel` needs the ``openai`` extra, imported when one is made.
"""

from ..errors import MaxTurnsError, ModelError
from .history import events_to_messages
from .models import ChatModel, Message, ModelReply, StreamChunk, ToolCall
from .offline import OfflineModel
from .openai_model import OpenAIChatModel, has_openai_key
from .runner import Reply, ReplyStream, Runner
from .summaries import HistorySource, LLMSummarizer, ServiceSummaryHistory, StateSummaryHistory, Summarizer
from .tools import DEFINITIONS as SESSION_TOOL_DEFINITIONS
from .tools import BoundSessionTools, SessionTools

__all__ = [
    "SESSION_TOOL_DEFINITIONS",
    "BoundSessionTools",
    "ChatModel",
    "HistorySource",
    "LLMSummarizer",
    "MaxTurnsError",
    "Message",
    "ModelError",
    "ModelReply",
    "OfflineModel",
    "OpenAIChatModel",
    "Reply",
    "ReplyStream",
    "Runner",
    "SessionTools",
    "ServiceSummaryHistory",
    "StateSummaryHistory",
    "StreamChunk",
    "Summarizer",
    "ToolCall",
    "events_to_messages",
    "has_openai_key",
]
