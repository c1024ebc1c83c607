"""A made-up, non-OpenAI inference API for transform specs: `POST .../chat/completions` takes
`{model_id, inputs: [{speaker, text}], parameters}`, `POST .../completions` takes
`{model_id, text, parameters}`; both reply `{generations: [{text, stop_reason}], token_counts}`."""

from __future__ import annotations

from tests.servers.http import Reply, Request


def custom_reply(request: Request) -> Reply:
    """Echo the last input's text, or 400 when the body is not in this API's shape."""
    body = request.json() or {}
    if request.path.endswith("/chat/completions"):
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all({"speaker", "text"} <= set(item) for item in inputs):
            return Reply(400, {"detail": "inputs must be a list of {speaker, text}"})
        prompt = inputs[-1]["text"]
    elif request.path.endswith("/completions"):
        prompt = body.get("text")
        if not isinstance(prompt, str):
            return Reply(400, {"detail": "text must be a string"})
    else:
        return Reply(404, {"detail": f"no route {request.path}"})
    if "model_id" not in body:
        return Reply(400, {"detail": "model_id is required"})
    return Reply(body={
        "generations": [{"text": f"echo: {prompt.splitlines()[-1]}", "stop_reason": "stop"}],
        "token_counts": {"input": len(prompt.split()), "output": 2},
    })
