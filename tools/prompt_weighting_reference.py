"""A Python reference of A1111's prompt weighting (stable-diffusion-webui 1.6-1.10), written here
from the algorithm as /work/shared/reference/prompts-and-adapters.md states it (sections 2-4), for
the engine's parity fixtures (tools/make_prompt_fixtures.py). It is not A1111's code.

- `parse_prompt_attention(text)`: the attention grammar -> [[text, weight], ...] with
  ["BREAK", -1] markers (`modules/prompt_parser.py`).
- `tokenize_line(tokenizer, text)`: each parsed piece tokenized without BOS/EOS, then 75-token
  chunks with the comma backtrack (20), BOS/EOS/EOS-padding per chunk (`sd_hijack_clip.py`).
- `encode(texts, ...)`: every chunk index of a batch of texts through the CLIP text encoder
  (texts with fewer chunks take empty chunks), the multipliers applied and the mean over the whole
  batch restored per chunk index (`sd_emphasis.EmphasisOriginal`), concatenated on the token axis.
"""
import re

import torch

CHUNK_LENGTH = 75
COMMA_PADDING_BACKTRACK = 20

_RE_ATTENTION = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)
_RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text):
    """[[text, weight], ...]; raises ValueError where a weight is not a number (`(a:1.2.3)`), as
    A1111 does for the whole request."""
    res = []
    round_brackets = []
    square_brackets = []

    def multiply_range(start, multiplier):
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in _RE_ATTENTION.finditer(text):
        token = m.group(0)
        weight = m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_brackets.append(len(res))
        elif token == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif token == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif token == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(re.split(_RE_BREAK, token)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for pos in round_brackets:
        multiply_range(pos, 1.1)
    for pos in square_brackets:
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


def tokenize_line(tokenizer, text, weighting=True):
    """Chunks of a prompt: a list of (ids[77], multipliers[77]). With `weighting` False the line is
    one piece at weight 1 (A1111's emphasis "None")."""
    parsed = parse_prompt_attention(text) if weighting else [[text, 1.0]]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    chunks = []
    tokens, mults = [], []
    last_comma = -1

    def next_chunk():
        nonlocal tokens, mults, last_comma
        fill = CHUNK_LENGTH - len(tokens)
        ids = [bos] + tokens + [eos] * fill + [eos]
        if pad != eos:  # SD-2.x: every position after the first EOS becomes the pad id
            first = ids.index(eos)
            ids = ids[:first + 1] + [pad] * (len(ids) - first - 1)
        chunks.append((ids, [1.0] + mults + [1.0] * fill + [1.0]))
        tokens, mults = [], []
        last_comma = -1

    for piece, weight in parsed:
        if piece == "BREAK" and weight == -1:
            next_chunk()
            continue
        for token in tokenizer(piece, add_special_tokens=False, truncation=False)["input_ids"]:
            if token == comma:
                last_comma = len(tokens)
            elif (COMMA_PADDING_BACKTRACK != 0 and len(tokens) == CHUNK_LENGTH and last_comma != -1
                  and len(tokens) - last_comma <= COMMA_PADDING_BACKTRACK):
                cut = last_comma + 1
                moved, moved_mults = tokens[cut:], mults[cut:]
                tokens, mults = tokens[:cut], mults[:cut]
                next_chunk()
                tokens, mults = moved, moved_mults
            if len(tokens) == CHUNK_LENGTH:
                next_chunk()
            tokens.append(token)
            mults.append(weight)
    if tokens or not chunks:
        next_chunk()
    return chunks


def empty_chunk(tokenizer):
    return tokenize_line(tokenizer, "")[0]


def encode_chunk_batch(text_encoder, ids, clip_skip):
    """CLIP output of one chunk per text, `[B, 77, C]`; clip_skip as diffusers counts it."""
    ids = torch.tensor(ids, dtype=torch.long)
    if clip_skip:
        out = text_encoder(ids, output_hidden_states=True)
        hidden = out.hidden_states[-(clip_skip + 1)]
        return text_encoder.text_model.final_layer_norm(hidden)
    return text_encoder(ids)[0]


def encode(text_encoder, tokenizer, texts, clip_skip=0, weighting=True):
    """A1111's conditioning for a batch of texts encoded together: `[B, 77 * chunks, C]`."""
    per_text = [tokenize_line(tokenizer, t, weighting) for t in texts]
    count = max(len(c) for c in per_text)
    empty = empty_chunk(tokenizer)
    zs = []
    with torch.no_grad():
        for i in range(count):
            batch = [c[i] if i < len(c) else empty for c in per_text]
            z = encode_chunk_batch(text_encoder, [b[0] for b in batch], clip_skip)
            multipliers = torch.asarray([b[1] for b in batch])  # float32, as A1111's torch.asarray
            original_mean = z.mean()
            z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
            new_mean = z.mean()
            z = z * (original_mean / new_mean)
            zs.append(z)
    return torch.hstack(zs)


def pad_with_empty(z, target_tokens, empty_z):
    """A1111's `pad_cond_uncond`: the empty prompt's encoding appended (77 tokens per copy) until
    `z` has `target_tokens` tokens."""
    copies = (target_tokens - z.shape[1]) // empty_z.shape[1]
    if copies <= 0:
        return z
    return torch.cat([z, empty_z.expand(z.shape[0], -1, -1).repeat(1, copies, 1)], dim=1)
