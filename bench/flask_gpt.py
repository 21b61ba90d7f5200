#!/usr/bin/python3
"""flask_gpt.py: the reference language-model server, the usual hand-written deployment, for bench/llm_load.py.

    gunicorn --chdir bench -w 2 --threads 1 -b 127.0.0.1:8600 --timeout 600 "flask_gpt:create_app('gpt.h5')"
    /usr/bin/python3 bench/flask_gpt.py --model gpt.h5 --generate 200 --prompt "ROMEO:"   # greedy, no server

Flask under gunicorn: 2 sync workers, each a process with its own copy of the model, PyTorch on 1 thread
(torch.set_num_threads(1)), generating one request at a time with a key/value cache (bench/torch_gpt.py's
model and decode()). bench/llm_compare.sh starts it this way. Use Debian's /usr/bin/python3 and gunicorn
(python3-torch, python3-h5py, python3-flask, gunicorn).

The model is the GPT that `examples/gpt --save gpt.h5` writes, read with h5py from the Keras layout
(tests/h5py_gpt_check.py's weight reading): token and position embeddings, pre-LayerNorm blocks of
MultiHeadAttention and two Dense layers, a final LayerNorm and the tied output projection; the root attribute
maas_metadata holds the character tokenizer ({"class_name": "CharTokenizer", "vocabulary": [...]}, see
include/maas/data/text.hpp). On loading, the PyTorch logits for a prompt are checked against the file's model
run in numpy (tests/h5py_gpt_check.py's run()) to 1e-3.

Routes (OpenAI's shapes):
- POST /v1/completions: prompt (at most the model's context, characters of its vocabulary), max_tokens
  (default 16), temperature (default 1; 0 is greedy), top_k (0: all), top_p (default 1), seed (default 0),
  stream. Other fields (stop, n, ...) are ignored. Answers {id, object: "text_completion", created, model,
  choices[{text, index, logprobs, finish_reason: "length"}], usage{prompt_tokens, completion_tokens,
  total_tokens}}; with stream: true, Server-Sent Events: one `data: {json}` chunk per token, a last chunk
  with finish_reason, then `data: [DONE]`. Errors: 400 (or 404 for another model's name) with
  {"error": {"message", "type", "param", "code"}}.
- GET /v1/models: the one model.
Decoding is maas' nn::Decoder's: the prompt in one pass, then one position per token; when the context is
full, decoding starts again from its last context / 2 tokens. Greedy decoding gives maas' text (argmax).

--generate N prints the prompt and N greedy tokens (as `examples/gpt --load gpt.h5 --generate N --prompt P
--temperature 0` prints them), to compare with maas.
"""
import argparse
import json
import os
import sys
import time
import uuid

os.environ.setdefault('OMP_NUM_THREADS', '1')

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests'))
from torch_gpt import GPT, decode  # noqa: E402
from h5py_gpt_check import layer_weights, run as numpy_run, text as attr_text  # noqa: E402


class LanguageModel:
    """The GPT of a maas .h5 file in PyTorch, with its character tokenizer."""

    def __init__(self, path):
        with h5py.File(path, 'r') as f:
            if 'model_config' not in f.attrs or 'maas_metadata' not in f.attrs:
                raise ValueError('%s has no model_config or maas_metadata: save it with examples/gpt --save' % path)
            config = json.loads(attr_text(f.attrs['model_config']))['config']
            metadata = json.loads(attr_text(f.attrs['maas_metadata']))
            if 'tokenizer' not in metadata:
                raise ValueError('%s holds no tokenizer (save the model with examples/gpt --save)' % path)
            tokenizer = json.loads(metadata['tokenizer'])
            if tokenizer.get('class_name') != 'CharTokenizer':
                raise ValueError('%s: tokenizer %s, not a CharTokenizer' % (path, tokenizer.get('class_name')))
            self.vocabulary = tokenizer['vocabulary']
            self.index = {c: i for i, c in enumerate(self.vocabulary)}
            self.model = self._build(config, f['model_weights'])
            self._check(config, f['model_weights'])

    def _build(self, config, weights):
        layers = config['layers']
        by_name = {l['config']['name']: l for l in layers}
        of = lambda cls: [l for l in layers if l['class_name'] == cls]
        source = lambda l: l['inbound_nodes'][0][0][0]  # the name of the layer's first input
        attention, gelu = of('MultiHeadAttention'), [l for l in of('Dense') if l['config']['activation'] == 'gelu']
        if len(attention) != len(gelu) or not attention:
            raise ValueError('not a GPT: %d attention layers, %d GELU Dense layers' % (len(attention), len(gelu)))
        embd, vocab = of('Embedding')[0]['config']['output_dim'], of('Embedding')[0]['config']['input_dim']
        block = config['layers'][0]['config']['batch_input_shape'][1]
        heads = attention[0]['config']['num_heads']
        self.block, self.heads = block, heads
        model = GPT(vocab, block, len(attention), heads, embd)
        t = lambda a: torch.tensor(a, dtype=torch.float32)
        w = lambda l: layer_weights(weights, l['config']['name'])
        state = {'tokens.weight': t(w(of('Embedding')[0])['embeddings']),
                 'positions.weight': t(w(of('PositionEmbedding')[0])['embeddings'])}

        def norm(prefix, layer):
            if layer['class_name'] != 'LayerNormalization':
                raise ValueError('layer %s feeds %s, not a LayerNormalization' % (layer['config']['name'], prefix))
            if abs(layer['config']['epsilon'] - 1e-3) > 1e-9:
                raise ValueError('%s: epsilon %g, the PyTorch model uses 1e-3' % (prefix, layer['config']['epsilon']))
            lw = w(layer)
            state[prefix + '.weight'], state[prefix + '.bias'] = t(lw['gamma']), t(lw['beta'])

        for i, (att, fc) in enumerate(zip(attention, gelu)):
            b = 'blocks.%d.' % i
            norm(b + 'ln1', by_name[source(att)])
            norm(b + 'ln2', by_name[source(fc)])
            aw = w(att)
            for ours, theirs in (('query', 'query'), ('key', 'key'), ('value', 'value')):
                state[b + 'attn.%s.weight' % ours] = t(aw[theirs + '/kernel'].reshape(embd, -1).T)
                state[b + 'attn.%s.bias' % ours] = t(aw[theirs + '/bias'].reshape(-1))
            state[b + 'attn.out.weight'] = t(aw['attention_output/kernel'].reshape(-1, embd).T)
            state[b + 'attn.out.bias'] = t(aw['attention_output/bias'])
            proj = [l for l in of('Dense') if source(l) == fc['config']['name']]
            if len(proj) != 1:
                raise ValueError('no single Dense layer reads %s' % fc['config']['name'])
            for ours, layer in (('fc', fc), ('proj', proj[0])):
                dw = w(layer)
                state[b + ours + '.weight'], state[b + ours + '.bias'] = t(dw['kernel'].T), t(dw['bias'])
        norm('ln_f', by_name[source(of('EmbeddingTranspose')[0])])
        state['head.weight'] = state['tokens.weight']
        model.load_state_dict(state)
        return model.eval()

    def _check(self, config, weights):
        """PyTorch's logits for a prompt equal the file's model run in numpy."""
        ids = [i % len(self.vocabulary) for i in range(0, 7 * self.block, 7)][:self.block]
        want = numpy_run(config, weights, np.array([ids]))
        with torch.no_grad():
            got = self.model(torch.tensor([ids])).double().numpy()
        diff = float(np.max(np.abs(got - want)))
        if diff > 1e-3:
            raise ValueError('the PyTorch model differs from the file run in numpy by %g: the weights are misread'
                             % diff)

    def encode(self, text):
        missing = [c for c in text if c not in self.index]
        if missing:
            raise ValueError('the prompt holds %r (U+%04X), which is not in the model\'s vocabulary'
                             % (missing[0], ord(missing[0])))
        return [self.index[c] for c in text]

    def tokens(self, prompt_ids, temperature, top_k, top_p, seed):
        """The tokens after prompt_ids, without end (decode() asks for each one when it is taken)."""
        if temperature == 0:
            pick = lambda logits: int(torch.argmax(logits))
        else:
            gen = torch.Generator().manual_seed(seed)

            def pick(logits):
                probs = F.softmax(logits / temperature, dim=-1)
                if not top_k and top_p >= 1:
                    return int(torch.multinomial(probs, 1, generator=gen))
                p, order = torch.sort(probs, descending=True)
                if top_k:
                    p, order = p[:top_k], order[:top_k]
                keep = (torch.cumsum(p, 0) - p) < top_p * p.sum()  # the smallest head holding top_p
                p, order = p[keep], order[keep]
                return int(order[torch.multinomial(p, 1, generator=gen)])
        return decode(self.model, list(prompt_ids), self.heads, pick)


def create_app(path, name='gpt'):
    """The Flask app serving the GPT in `path` as model `name` (gunicorn's app factory)."""
    from flask import Flask, Response, jsonify, request

    torch.set_num_threads(1)
    lm = LanguageModel(path)
    app = Flask(__name__)

    def error(status, message, param=None, kind='invalid_request_error'):
        body = {'error': {'message': message, 'type': kind, 'param': param, 'code': None}}
        return jsonify(body), status

    @app.get('/v1/models')
    def models():
        return jsonify({'object': 'list', 'data': [{'id': name, 'object': 'model', 'owned_by': 'maas'}]})

    @app.post('/v1/completions')
    def completions():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, 'the body is not a JSON object')
        if body.get('model', name) != name:
            return error(404, 'the model %r does not exist; this server has %r' % (body['model'], name), 'model')
        prompt = body.get('prompt', '')
        try:
            max_tokens = int(body.get('max_tokens', 16))
            temperature = float(body.get('temperature', 1.0))
            top_k, top_p = int(body.get('top_k', 0)), float(body.get('top_p', 1.0))
            seed = int(body.get('seed', 0))
        except (TypeError, ValueError) as e:
            return error(400, 'a parameter is not a number: %s' % e)
        if not isinstance(prompt, str) or not prompt:
            return error(400, 'prompt must be a non-empty string', 'prompt')
        if len(prompt) > lm.block:
            return error(400, 'the prompt\'s %d characters are longer than the model\'s context of %d'
                         % (len(prompt), lm.block), 'prompt')
        if max_tokens < 1 or temperature < 0 or top_k < 0 or not 0 < top_p <= 1:
            return error(400, 'max_tokens must be >= 1, temperature >= 0, top_k >= 0 and top_p in (0, 1]')
        try:
            ids = lm.encode(prompt)
        except ValueError as e:
            return error(400, str(e), 'prompt')
        tokens = lm.tokens(ids, temperature, top_k, top_p, seed)
        head = {'id': 'cmpl-' + uuid.uuid4().hex, 'object': 'text_completion', 'created': int(time.time()),
                'model': name}
        choice = lambda text, finish: {'text': text, 'index': 0, 'logprobs': None, 'finish_reason': finish}
        if not body.get('stream', False):
            text = ''.join(lm.vocabulary[t] for _, t in zip(range(max_tokens), tokens))
            usage = {'prompt_tokens': len(ids), 'completion_tokens': max_tokens,
                     'total_tokens': len(ids) + max_tokens}
            return jsonify(dict(head, choices=[choice(text, 'length')], usage=usage))

        def events():
            for _, t in zip(range(max_tokens), tokens):
                yield 'data: %s\n\n' % json.dumps(dict(head, choices=[choice(lm.vocabulary[t], None)]))
            yield 'data: %s\n\n' % json.dumps(dict(head, choices=[choice('', 'length')]))
            yield 'data: [DONE]\n\n'

        return Response(events(), mimetype='text/event-stream', headers={'Cache-Control': 'no-cache'})

    return app


def main():
    p = argparse.ArgumentParser(description='Reference GPT server; --generate samples greedily without one.')
    p.add_argument('--model', required=True, help='the .h5 file examples/gpt --save wrote')
    p.add_argument('--generate', type=int, required=True, help='greedy tokens to print after the prompt')
    p.add_argument('--prompt', default='\n')
    a = p.parse_args()
    torch.set_num_threads(1)
    lm = LanguageModel(a.model)
    ids = lm.encode(a.prompt)
    if not ids or len(ids) > lm.block:
        sys.exit('flask_gpt.py: the prompt must hold 1 to %d characters' % lm.block)
    out = [t for _, t in zip(range(a.generate), lm.tokens(ids, 0.0, 0, 1.0, 0))]
    print(''.join(lm.vocabulary[t] for t in ids + out))


if __name__ == '__main__':
    main()
