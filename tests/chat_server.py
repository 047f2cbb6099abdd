"""A real chat-completions HTTP server on 127.0.0.1, started by the tests that need one.

It speaks the part of the OpenAI protocol the OpenAI-compatible model uses:
``POST /v1/chat/completions``, plain JSON or ``stream: true`` server-sent
events, tool calls included. Each request is answered by the next scripted
`Answer` (or, with the script empty, by the default: a reply naming how
many messages it received and echoing the last user message). Every
request body and its headers are kept for the test to inspect.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"id","name","arguments"}]
    status: int = 200
    delay: float = 0.0  # seconds before answering (a timeout test)
    chunk_delay: float = 0.0


@dataclass
class ChatServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)

    def default(self, body: dict[str, Any]) -> Answer:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1]["content"] if users else ""
        return Answer(text=f"[{len(body.get('messages', []))} messages] you said: {last}")


def _completion(model: str, answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}} for c in answer.tool_calls]
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if answer.tool_calls else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _chunks(model: str, answer: Answer) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    words = answer.text.split(" ")
    for i, word in enumerate(words):
        if word or i == 0:
            yield chunk({"content": word if i == len(words) - 1 else word + " "})
    for index, call in enumerate(answer.tool_calls):  # the id and name first, then the arguments in two pieces
        yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                     "function": {"name": call["name"], "arguments": ""}}]})
        half = len(call["arguments"]) // 2
        for part in (call["arguments"][:half], call["arguments"][half:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if answer.tool_calls else "stop")


@contextmanager
def chat_server() -> Iterator[ChatServer]:
    state: dict[str, ChatServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            try:
                self._answer()
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout test)
                pass

        def _answer(self) -> None:
            server = state["server"]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            server.requests.append(body)
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            answer = server.script.pop(0) if server.script else server.default(body)
            if answer.delay:
                time.sleep(answer.delay)
            if answer.status != 200:
                return self._json(answer.status, {"error": {"message": f"scripted failure {answer.status}",
                                                            "type": "server_error", "code": None}})
            model = body.get("model", "test-model")
            if not body.get("stream"):
                return self._json(200, _completion(model, answer))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in _chunks(model, answer):
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                if answer.chunk_delay:
                    time.sleep(answer.chunk_delay)
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state["server"] = ChatServer(url=f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    thread = threading.Thread(target=httpd.serve_forever, name="chat-server", daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
