"""The endpoints besides completions: embeddings, models, moderations, images, audio,
files and tasks, answered like the OpenAI API (same shapes, same errors).

Each handler takes a routed `Call`. Vectors, scores, images and sounds are derived
from the request, so they repeat exactly; files and tasks keep state per app
(`FileStore`, `TaskQueue`). A task succeeds on its `polls`-th poll with the whole
answer a chat or text completion body would get; ``demo:flag`` in a moderation
input gets it flagged.
"""

from __future__ import annotations

import base64
import math
import random
import struct
from typing import Any

from streamtape.simulator import media
from streamtape.simulator.asgi import Form, HTTPError, Response, json_response
from streamtape.simulator.chat import chat_completion
from streamtape.simulator.completions import completion
from streamtape.simulator.routing import Call
from streamtape.simulator.synth import EPOCH, SENTENCES, count_tokens, ident, seed, sig, text_of

MODELS = (
    ("gpt-4o-mini", "system"),
    ("gpt-4o", "system"),
    ("gpt-3.5-turbo-instruct", "system"),
    ("text-embedding-3-small", "system"),
    ("text-embedding-3-large", "system"),
    ("omni-moderation-latest", "system"),
    ("dall-e-3", "system"),
    ("tts-1", "system"),
    ("whisper-1", "openai-internal"),
    ("demo-echo", "streamtape"),
)
"""(id, owned_by) of every model ``GET /v1/models`` lists."""

_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_STAMP_SPAN = 50_000_000  # `created` stamps spread over about a year and a half after EPOCH


def _created(*parts: Any) -> int:
    return EPOCH + seed(*parts) % _STAMP_SPAN


def _input_items(body: dict[str, Any]) -> list[Any]:
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        return [raw]
    if isinstance(raw, list) and raw:
        return raw
    raise HTTPError(400, "'input' must be a string or a non-empty array.", param="input")


def _embedding_format(body: dict[str, Any], model: str) -> tuple[int, str]:
    dims = body.get("dimensions") or (3072 if "large" in model else 1536)
    if not isinstance(dims, int) or not 1 <= dims <= 3072:
        raise HTTPError(400, "'dimensions' must be between 1 and 3072.", param="dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise HTTPError(
            400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
        )
    return dims, fmt


def embeddings(call: Call) -> Response:
    """``POST /v1/embeddings``: unit vectors at float32 precision, seeded by the input."""
    body = call.json()
    items = _input_items(body)
    model = str(body.get("model") or "text-embedding-3-small")
    dims, fmt = _embedding_format(body, model)
    data = []
    tokens = 0
    for i, item in enumerate(items):
        tokens += len(item) if isinstance(item, list) else count_tokens(str(item))
        rng = random.Random(seed("embedding", model, dims, item))
        vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        values = [float(f"{v / norm:.9g}") for v in vec]  # float32 precision, like the API
        packed = struct.pack(f"<{dims}f", *values)
        embedding: Any = base64.b64encode(packed).decode() if fmt == "base64" else values
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_response({"object": "list", "data": data, "model": model, "usage": usage})


def _model(name: str, owner: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": EPOCH - seed(name) % 90_000_000,
        "owned_by": owner,
    }


def list_models(call: Call) -> Response:
    """``GET /v1/models``."""
    return json_response({"object": "list", "data": [_model(m, o) for m, o in MODELS]})


def get_model(call: Call) -> Response:
    """``GET /v1/models/{id}``."""
    model_id = call.params["id"]
    for name, owner in MODELS:
        if name == model_id:
            return json_response(_model(name, owner))
    raise HTTPError(
        404,
        f"The model '{model_id}' does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _moderation_texts(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return list(raw)
    if isinstance(raw, list) and raw:  # multimodal parts: one result for the whole input
        return [text_of(raw)]
    raise HTTPError(400, "'input' must be a string or a non-empty array.", param="input")


def moderations(call: Call) -> Response:
    """``POST /v1/moderations``: tiny scores, except ``violence`` for ``demo:flag``."""
    body = call.json()
    texts = _moderation_texts(body.get("input"))
    model = str(body.get("model") or "omni-moderation-latest")
    results = []
    for text in texts:
        rng = random.Random(seed("moderation", text))
        flagged = "demo:flag" in text.lower()
        scores = {c: sig(rng.uniform(1e-6, 1e-3)) for c in _MODERATION_CATEGORIES}
        if flagged:
            scores["violence"] = sig(rng.uniform(0.85, 0.99))
        results.append(
            {
                "flagged": flagged,
                "categories": {c: scores[c] > 0.5 for c in _MODERATION_CATEGORIES},
                "category_scores": scores,
                "category_applied_input_types": {c: ["text"] for c in _MODERATION_CATEGORIES},
            }
        )
    moderation_id = ident("modr-", 29, model, texts)
    return json_response({"id": moderation_id, "model": model, "results": results})


def images(call: Call) -> Response:
    """``POST /v1/images/generations``: `n` small PNGs, inline or as data URLs."""
    body = call.json()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise HTTPError(400, "'prompt' must be a non-empty string.", param="prompt")
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 4:
        raise HTTPError(400, "'n' must be between 1 and 4.", param="n")
    data = []
    for i in range(n):
        png = base64.b64encode(media.png(seed("image", prompt, i))).decode()
        item: dict[str, Any] = {"revised_prompt": f"A simple gradient inspired by: {prompt}"}
        if body.get("response_format") == "url":
            item["url"] = "data:image/png;base64," + png
        else:
            item["b64_json"] = png
        data.append(item)
    return json_response({"created": _created(prompt), "data": data})


def speech(call: Call) -> Response:
    """``POST /v1/audio/speech``: a tone as long as the text would take to say (WAV or PCM)."""
    body = call.json()
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise HTTPError(400, "'input' must be a non-empty string.", param="input")
    voice = str(body.get("voice") or "alloy")
    duration = min(2.0, 0.2 + 0.04 * count_tokens(text))
    pcm = media.tone(seed("voice", voice), duration=duration)
    if body.get("response_format") == "pcm":
        return Response(body=pcm, content_type="audio/pcm")
    return Response(body=media.wav(pcm), content_type="audio/wav")


def _subtitles(fmt: str, text: str, duration: float) -> Response:
    sep = "," if fmt == "srt" else "."
    stamp = f"00:00:00{sep}000 --> 00:00:{min(duration, 59.999):06.3f}".replace(".", sep)
    head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
    return Response(body=f"{head}{stamp}\n{text}\n\n".encode(), content_type="text/plain")


def transcription(call: Call) -> Response:
    """``POST /v1/audio/transcriptions``: one canned sentence, in every response format."""
    form = call.request.form()
    if "file" not in form:
        raise HTTPError(400, "A 'file' field is required.", param="file")
    filename, content = form["file"]
    fmt = form.get("response_format", (None, b"json"))[1].decode() or "json"
    text = random.Random(seed("transcription", content)).choice(SENTENCES)
    duration = media.wav_duration(content)
    if fmt == "text":
        return Response(body=(text + "\n").encode(), content_type="text/plain; charset=utf-8")
    if fmt in ("srt", "vtt"):
        return _subtitles(fmt, text, duration)
    if fmt == "verbose_json":
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": " " + text}
        return json_response(
            {
                "task": "transcribe",
                "language": "english",
                "duration": duration,
                "text": text,
                "segments": [segment],
            }
        )
    if fmt != "json":
        raise HTTPError(400, f"Unsupported response_format '{fmt}'.", param="response_format")
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    return json_response({"text": text, "usage": usage, "filename": filename})


class FileStore:
    """``/v1/files``: uploads kept in memory for the life of the app."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}

    def upload(self, call: Call) -> Response:
        """``POST /v1/files`` (multipart: ``file`` and ``purpose``)."""
        form: Form = call.request.form()
        if "file" not in form or form["file"][0] is None:
            raise HTTPError(400, "A 'file' field with a filename is required.", param="file")
        filename, content = form["file"]
        purpose = form.get("purpose", (None, b"assistants"))[1].decode()
        file_id = ident("file-", 22, filename, content, purpose)
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": _created(file_id),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self._files[file_id] = (meta, content)
        return json_response(meta)

    def listing(self, call: Call) -> Response:
        """``GET /v1/files``."""
        files = [meta for meta, _ in self._files.values()]
        return json_response({"object": "list", "data": files, "has_more": False})

    def _stored(self, file_id: str) -> tuple[dict[str, Any], bytes]:
        stored = self._files.get(file_id)
        if stored is None:
            raise HTTPError(404, f"No such File object: {file_id}", param="id")
        return stored

    def file(self, call: Call) -> Response:
        """``GET`` or ``DELETE /v1/files/{id}``."""
        file_id, method = call.params["id"], call.request.method
        meta, _ = self._stored(file_id)
        if method == "GET":
            return json_response(meta)
        if method == "DELETE":
            del self._files[file_id]
            return json_response({"id": file_id, "object": "file", "deleted": True})
        raise HTTPError(405, f"Method {method} is not allowed here.")

    def content(self, call: Call) -> Response:
        """``GET /v1/files/{id}/content``."""
        _, content = self._stored(call.params["id"])
        if call.request.method == "GET":
            return Response(body=content, content_type="application/octet-stream")
        raise HTTPError(405, f"Method {call.request.method} is not allowed here.")


class TaskQueue:
    """``/v1/tasks``: a long-running job, queued, then running, done on poll `polls`."""

    def __init__(self) -> None:
        self._tasks: dict[str, dict[str, Any]] = {}
        self._counter = 0

    def create(self, call: Call) -> Response:
        """``POST /v1/tasks``: every submission is its own task, even of the same body."""
        body = call.json()
        self._counter += 1
        task_id = ident("task_", 24, self._counter, body)
        task = {
            "id": task_id,
            "object": "task",
            "status": "queued",
            "created_at": _created(task_id),
        }
        self._tasks[task_id] = {**task, "input": body, "polls": 0}
        return json_response(task)

    def poll(self, call: Call, polls: int, max_tokens_cap: int) -> Response:
        """``GET /v1/tasks/{id}``: progress, then the result (or the error) of the body."""
        task_id = call.params["id"]
        state = self._tasks.get(task_id)
        if state is None:
            raise HTTPError(404, f"No such task: {task_id}", param="id")
        state["polls"] += 1
        public = {k: state[k] for k in ("id", "object", "status", "created_at")}
        if state["polls"] < polls:
            public["status"] = "queued" if state["polls"] == 1 else "running"
            public["progress"] = round(100 * (state["polls"] - 1) / polls)
            return json_response(public)
        try:
            result = _task_result(state["input"], max_tokens_cap)
        except HTTPError as exc:
            return json_response({**public, "status": "failed", "error": exc.body["error"]})
        return json_response({**public, "status": "succeeded", "progress": 100, "result": result})


def _task_result(body: dict[str, Any], max_tokens_cap: int) -> dict[str, Any]:
    """What a finished task answers: the whole chat or text completion, or a sentence."""
    if "messages" in body:
        return chat_completion(body, max_tokens_cap)
    if "prompt" in body:
        return completion(body, max_tokens_cap)
    return {"output": random.Random(seed("task", body)).choice(SENTENCES)}
