#!/usr/bin/env python3
"""openai_client_check.py: maas-serve's language-model routes as an OpenAI client speaks to them, with
nothing but the standard library (http.client).

    openai_client_check.py MAAS_TESTS MAAS_SERVE WORK_DIR

Writes a small GPT with its tokenizer (MAAS_TESTS "[h5py-gpt-sample]", the model h5py_gpt_check.py reads:
context 8, the characters of "First Citizen:\\nBefore we proceed any further, hear me speak.\\n"), serves it
with MAAS_SERVE on a free port, and checks:
  - GET /v1/models lists it;
  - POST /v1/completions answers OpenAI's completion object, and the same seed gives the same text;
  - "stream": true answers Server-Sent Events (text/event-stream, read line by line as clients read them):
    one `data: {chunk}` per token, a last chunk with finish_reason and usage, then `data: [DONE]`; the
    chunks' text is the unstreamed text;
  - a character outside the vocabulary, and chat messages longer than the context, get 400 and OpenAI's
    error object.

Exit status: 0 ok, 1 a check failed.
"""
import http.client
import json
import os
import re
import subprocess
import sys


def check(cond, message):
    if not cond:
        print("openai_client_check: FAILED: " + message)
        sys.exit(1)


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def call(port, method, path, body=None, status=200):
    conn, resp = request(port, method, path, body)
    data = resp.read().decode("utf-8")
    conn.close()
    check(resp.status == status, "%s %s: status %d, not %d: %s" % (method, path, resp.status, status, data))
    return json.loads(data)


def stream(port, body):
    conn, resp = request(port, "POST", "/v1/completions", dict(body, stream=True))
    check(resp.status == 200, "stream: status %d" % resp.status)
    check(resp.getheader("Content-Type", "").startswith("text/event-stream"),
          "stream: Content-Type %s" % resp.getheader("Content-Type"))
    chunks, done = [], False
    while True:
        line = resp.readline().decode("utf-8")
        if not line:
            break
        line = line.rstrip("\n")
        if not line:
            continue
        check(line.startswith("data: "), "stream: a line that is not an event: %r" % line)
        payload = line[len("data: "):]
        if payload == "[DONE]":
            done = True
            break
        chunks.append(json.loads(payload))
    conn.close()
    check(done, "stream: no data: [DONE]")
    return chunks


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    tests, serve, work = sys.argv[1:]
    os.makedirs(work, exist_ok=True)
    subprocess.run([tests, "[h5py-gpt-sample]"], env=dict(os.environ, MAAS_H5PY_GPT_DIR=work), check=True,
                   stdout=subprocess.DEVNULL)
    server = subprocess.Popen([serve, "--model", "gpt=" + os.path.join(work, "gpt.h5"), "--port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stderr:  # "... listening on http://127.0.0.1:PORT"
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        check(port is not None, "maas-serve did not say where it listens")

        models = call(port, "GET", "/v1/models")
        check(models["object"] == "list" and [m["id"] for m in models["data"]] == ["gpt"], "models: %s" % models)

        body = {"model": "gpt", "prompt": "hear me ", "max_tokens": 8, "temperature": 0.9, "seed": 12}
        a = call(port, "POST", "/v1/completions", body)
        check(a["object"] == "text_completion" and a["id"].startswith("cmpl-") and a["model"] == "gpt",
              "completion: %s" % a)
        choice = a["choices"][0]
        check(len(choice["text"]) == 8 and choice["finish_reason"] == "length" and choice["index"] == 0,
              "completion choice: %s" % choice)
        check(a["usage"] == {"prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16}, "usage: %s" % a)
        check(call(port, "POST", "/v1/completions", body)["choices"][0]["text"] == choice["text"],
              "the same seed gave another text")

        chunks = stream(port, body)
        check(len(chunks) == 9, "stream: %d chunks, not 8 tokens and a last one" % len(chunks))
        check(all(c["object"] == "text_completion" for c in chunks), "stream: chunk objects")
        check(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]), "stream: early finish_reason")
        check(chunks[-1]["choices"][0]["finish_reason"] == "length", "stream: last chunk %s" % chunks[-1])
        check(chunks[-1]["usage"]["completion_tokens"] == 8, "stream: usage %s" % chunks[-1])
        text = "".join(c["choices"][0]["text"] for c in chunks)
        check(text == choice["text"], "stream: %r, unstreamed %r" % (text, choice["text"]))

        # The chat template ("user: speak\nassistant: ", 23 characters) is longer than this model's context.
        error = call(port, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "speak"}]},
                     status=400)["error"]
        check(error["param"] == "messages" and error["code"] == "context_length_exceeded" and
              "context of 8" in error["message"], "chat error: %s" % error)

        error = call(port, "POST", "/v1/completions", {"prompt": "hear me?"}, status=400)["error"]
        check("'?'" in error["message"] and error["type"] == "invalid_request_error" and
              error["code"] == "unsupported_character", "error: %s" % error)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print("openai_client_check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
