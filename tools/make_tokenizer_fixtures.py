#!/usr/bin/env python3
"""Builds the CLIP tokenizer files and the tokenizer test fixtures.

One command regenerates everything (run from the repository root):

    $(tools/venv.sh) tools/make_tokenizer_fixtures.py

What it does:
1. Downloads the `open_clip_torch` wheel from PyPI (pinned version, no dependencies), reads the MIT-licensed
   OpenAI CLIP BPE table `bpe_simple_vocab_16e6.txt.gz` from it and writes `Resources/clip-tokenizer/`
   laid out exactly like the Hugging Face `openai/clip-vit-large-patch14` tokenizer (vocab.json with 49408
   entries, merges.txt with a `#version: 0.2` header and 48894 merges) plus the special_tokens_map.json /
   tokenizer_config.json that SD 1.5 and DeciDiffusion ship.
2. Checks that transformers' CLIPTokenizer loads those files and gives the known ids for a few prompts.
3. Builds a prompt set (hand-written plus generated from a fixed seed) and records what the oracles give:
   - `tokenizers`: transformers 5.x `CLIPTokenizer` (the tokenizers-backed class that diffusers 0.42 gets
     from the project venv; identical to transformers 4.x `CLIPTokenizerFast` except where noted);
   - `legacy`: transformers 4.x's pure-Python `CLIPTokenizer` without ftfy (BasicTokenizer clean-up). It
     runs in a second venv (`~/.cache/decidiffusion/venv-transformers4`, created on first use) because
     transformers 5 no longer has that class. The same run records where transformers 4.x's
     CLIPTokenizerFast differs from either.
4. Writes `Fixtures/tokenizer/*.json` and the SD-2-style (pad "!") and modern-format config variants.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "Resources" / "clip-tokenizer"
FIXTURES = ROOT / "Fixtures" / "tokenizer"
OPEN_CLIP_VERSION = "3.3.0"
LEGACY_VENV = Path(os.environ.get("DECI_VENV_T4", Path.home() / ".cache/decidiffusion/venv-transformers4"))
LEGACY_REQUIREMENT = "transformers==4.57.6"
MAX_LENGTH = 77


# ----------------------------------------------------------------------------------------------
# 1. Vocabulary files


def byte_table():
    """GPT-2/CLIP byte -> printable character table (bytes that print as themselves keep their code)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    # Order matters for vocab ids: printable bytes first, in byte order, then the remapped ones.
    ordered = [b for b in printable] + [b for b in range(256) if b not in printable]
    return [table[b] for b in ordered]


def derive_vocabulary(out: Path):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                        f"open_clip_torch=={OPEN_CLIP_VERSION}"], check=True)
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            raw = gzip.decompress(zf.read("open_clip/bpe_simple_vocab_16e6.txt.gz")).decode("utf-8")
    lines = raw.split("\n")
    # The first line is a header; CLIP uses the next 49152 - 256 - 2 merges (vocab 49408 = 512 + merges + 2).
    merges = lines[1:49152 - 256 - 2 + 1]
    assert len(merges) == 48894 and all(len(m.split(" ")) == 2 for m in merges)
    chars = byte_table()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == 49408 and len(set(tokens)) == 49408
    out.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(tokens)}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    write_sd15_configs(out)
    (out / "NOTICE.txt").write_text(
        "vocab.json and merges.txt are derived from bpe_simple_vocab_16e6.txt.gz of OpenAI CLIP\n"
        "(https://github.com/openai/CLIP, MIT License, Copyright (c) 2021 OpenAI), as shipped in the\n"
        f"open_clip_torch {OPEN_CLIP_VERSION} wheel on PyPI. Regenerate with tools/make_tokenizer_fixtures.py.\n"
        "The layout matches the Hugging Face openai/clip-vit-large-patch14 tokenizer files.\n",
        encoding="utf-8")
    for name in ("vocab.json", "merges.txt"):
        print(f"  {name}: {(out / name).stat().st_size} bytes, sha256 "
              f"{hashlib.sha256((out / name).read_bytes()).hexdigest()[:16]}")


def added_token(content, with_type):
    d = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return ({"__type": "AddedToken"} | d) if with_type else d


def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_sd15_configs(out: Path, pad_in_map="<|endoftext|>", pad_in_config="<|endoftext|>"):
    """The files SD 1.5 / DeciDiffusion ship (written by transformers 4.2x/4.3x: no added_tokens_decoder)."""
    write_json(out / "special_tokens_map.json", {
        "bos_token": added_token("<|startoftext|>", False),
        "eos_token": added_token("<|endoftext|>", False),
        "pad_token": pad_in_map,
        "unk_token": added_token("<|endoftext|>", False),
    })
    write_json(out / "tokenizer_config.json", {
        "add_prefix_space": False,
        "bos_token": added_token("<|startoftext|>", True),
        "do_lower_case": True,
        "eos_token": added_token("<|endoftext|>", True),
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": pad_in_config,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": added_token("<|endoftext|>", True),
    })


def write_variants():
    """Config-only variants; tests pair them with Resources/clip-tokenizer/{vocab.json,merges.txt}."""
    # SD 2.x: special_tokens_map.json says pad "!" and, being the legacy format, overrides tokenizer_config.
    sd2 = FIXTURES / "sd2-pad"
    sd2.mkdir(parents=True, exist_ok=True)
    write_sd15_configs(sd2, pad_in_map="!", pad_in_config="<|endoftext|>")
    # Modern format (transformers >= 4.34): added_tokens_decoder present, so special_tokens_map.json is ignored
    # (its pad "!" must not win), tokens given as plain strings, clean_up_tokenization_spaces set.
    modern = FIXTURES / "modern-format"
    modern.mkdir(parents=True, exist_ok=True)
    write_json(modern / "special_tokens_map.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>",
    })
    write_json(modern / "tokenizer_config.json", {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            "49406": {"content": "<|startoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                      "single_word": False, "special": True},
            "49407": {"content": "<|endoftext|>", "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True},
        },
        "bos_token": "<|startoftext|>",
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": "<|endoftext|>",
    })


def assemble(config_dir: Path, dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        (dest / name).write_bytes((RESOURCES / name).read_bytes())
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        (dest / name).write_bytes((config_dir / name).read_bytes())
    return dest


# ----------------------------------------------------------------------------------------------
# 2. Prompts

HAND_WRITTEN = [
    "", " ", "   ", "\t", "\n", "a", "A", "a photo of a cat", "A photo of a cat.", "a photo of a dog",
    "An astronaut riding a horse on Mars, digital art", "a portrait of an old man, oil on canvas, rembrandt lighting",
    "A cozy cabin in the snowy mountains at dusk, warm light in the windows, 4k, highly detailed",
    "cyberpunk city street at night, neon signs, rain, reflections, cinematic, 35mm, f/1.8",
    "a bowl of ramen with a soft-boiled egg, food photography, shallow depth of field",
    "Photorealistic image of a red fox in a snowy forest, golden hour, national geographic",
    "a watercolor painting of a lighthouse on a cliff", "a 3D render of a cute robot, pixar style, octane render",
    "masterpiece, best quality, ultra-detailed, 8k wallpaper, (extremely detailed CG unity 8k wallpaper)",
    "(((masterpiece))), [[blurry]], {high quality}, <lora:detail:0.7>", "((best quality)), ((masterpiece:1.2))",
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality",
    "A photograph of an astronaut riding a horse.", "a corgi wearing a party hat, studio lighting",
    "Teddy bears working on new AI research underwater with 1990s technology",
    "A sign that says 'Deep Learning'.", "A sign that says \"Hello World\"", "the word 'START' written on a street",
    "a stained glass window depicting a hamburger and french fries",
    "a blue cow is standing next to a tree with red leaves and yellow fruit. the cow is standing in a field "
    "with white flowers. impressionistic painting.",
    "an oil painting of a tree and a tower with a sailboat on a lake", "a triangle-shaped sign with a rabbit on it",
    "three cats and two dogs sitting on the grass", "a green clock in the shape of a pentagon",
    "A bridge connecting Europe and North America on the Atlantic Ocean, bird's eye view",
    "an old-fashioned phone next to a sleek laptop", "the Mona Lisa in the style of Van Gogh's Starry Night",
    "a car made out of sushi", "a shiba inu wearing a beret and black turtleneck",
    "A raccoon wearing formal clothes, wearing a tophat and holding a cane. The raccoon is holding a garbage bag. "
    "Oil painting in the style of pixel art.",
    "a storefront that has the word 'openai' written on it", "an armchair in the shape of an avocado",
    "don't", "Don't", "DON'T", "I'm", "I'M", "you're", "YOU'RE", "we've", "WE'VE", "they'll", "THEY'LL", "he'd",
    "HE'D", "it's", "IT'S", "can't won't shouldn't", "rock'n'roll", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
    "''", "'''s", "'s's's", "a'sb", "x'llama", "'dog'", "the dogs' bowls", "o'clock", "'ſ ſ'ſt", "’s curly’s",
    "!!!", "???", "!?!?!?", "...", "…", "----", "a -- b", "a---b", "***", "#hashtag #AI #art", "@user_name",
    "$100", "100%", "3.14159", "1,000,000", "2024-01-31", "12:30pm", "1st 2nd 3rd 4th", "007", "1234567890",
    "0x1F600", "v1.5", "sd-v2.1", "(1+1)=2", "a=b+c*d/e^f", "~tilde~", "back\\slash", "pipe|char", "<angle>",
    "[square]", "{curly}", "under_score", "semi;colon", "co:lon", "ques?tion", "excl!amation", "quo\"te",
    "http://example.com", "https://www.example.org/path/to/page?query=1&b=2#frag", "www.decidiffusion.ai",
    "ftp://files.example.net/a.tar.gz", "user@example.com", "C:\\Users\\name\\file.txt", "/usr/local/bin",
    "café", "cafe\u0301", "naïve", "naı\u0308ve", "résumé", "Ångström", "A\u030angstro\u0308m", "Ω ohm Ω", "Å K",
    "São Paulo", "Zürich", "Kraków", "Ærøskøbing", "Łódź", "İstanbul", "ISTANBUL istanbul", "straße STRASSE ẞ",
    "ΟΔΟΣ οδός ΣΊΣΥΦΟΣ Σ", "Σ. ΑΣ ΑΣ1 ΑΣΑ", "Москва ЁЛКА ёлка", "Ελληνικά", "עברית", "العربية", "हिन्दी",
    "বাংলা", "ภาษาไทย", "ქართული", "Հայերեն", "한국어 텍스트", "日本語のテキスト", "カタカナ ひらがな",
    "中文字符", "中文 字符 测试", "漢字と仮名", "𠀀𠀁 𪜀", "鿕鿫", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "ｱｲｳ",
    "emoji 🐱🐶 👍🏽", "🐱", "🐈‍⬛ black cat", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "❤️", "❤", "🇫🇷🇯🇵", "1️⃣ keycap",
    "😀😃😄😁😆😅😂🤣", "a🐱b", "cat🐱", "🐱cat", "☕ coffee", "★☆✓✗", "♠♥♦♣", "€ £ ¥ ₹ ₿", "© ® ™",
    "½ ¼ ¾ ⅓", "x² y³ z⁴", "H₂O CO₂", "٣ ٤ ٥ ١٢٣", "१२३ ०", "Ⅻ Ⅳ ⅻ", "①②③", "𝟙𝟚𝟛", "𝕳𝖊𝖑𝖑𝖔",
    "ﬁ ﬂ ﬀ", "ǅ ǈ ǋ", "ĳ Ĳ", "µ μ", "ℌ ℍ", "ª º", "Ⓐⓑ", "ʰʲʷ", "ꜳ", "Ꭰ ꭰ",
    "tab\tseparated\twords", "new\nline", "carriage\r\nreturn", "many     spaces", "  leading and trailing  ",
    "nbsp\u00a0here", "ideographic\u3000space", "em\u2003space", "thin\u2009space", "zero\u200bwidth",
    "zwj\u200djoiner", "zwnj\u200cnon", "bom\ufeffmark", "soft\u00adhyphen", "line\u2028sep", "para\u2029sep",
    "nel\u0085char", "vt\u000bff\u000c", "fs\u001cgs\u001drs\u001eus\u001f", "ctrl\u0001char\u0007bell",
    "del\u007fchar", "replacement\ufffdchar", "private\ue000use", "mongolian\u180evs", "rtl\u200fmark\u200e",
    "J\u030c ǰ ǰ J\u030c", "ǰ j\u030c", "\u212b \u00c5 A\u030a", "word\u0301 combining", "\u0301leading combining", "a\u0308\u0304 stacked", "ogham\u1680space",
    "narrow\u202fnbsp", "math\u205fspace", "variation\ufe0fsel", "tag\U000e0041chars",
    "<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>", "<|EndOfText|>", "a<|endoftext|>b",
    "x <|startoftext|> y", "<|endoftext|><|endoftext|>", "<|endoftext|>>", "<<|endoftext|>", "<|endoftext |>",
    " <|endoftext|> ", "cat<|endoftext|>dog<|startoftext|>bird", "<|endoftext", "endoftext|>", "<||>", "<|",
    "|>", "<|endoftext|>!!", "<|startoftext|>'s", "<|endoftext|>123", "<|STARTOFTEXT|>", "a<|StartOfText|>b",
    "<|ſtartoftext|>", "<|ſtartoftext|> cat", "it'ſ", "'ſ", "'ſt", "CAT'S DOG'ſ",
    "hello!", "wow!!! ok", "a!b", "! start", "end !", "!", "!!", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "¡Hola! ¿Qué tal?", "«guillemets» „quotes“ “smart” ‘single’", "em—dash en–dash", "mid·dot",
    "a" * 300, "ab" * 150, "z" * 77, "the " * 80, "cat, " * 60, "1" * 100, "1 " * 100, "🐱" * 50,
    "!" * 200, ". " * 90, "x" * 1000, "supercalifragilisticexpialidocious " * 10,
    "pneumonoultramicroscopicsilicovolcanoconiosis", "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
]

WORDS = {
    "subject": ["a cat", "a dog", "an astronaut", "a robot", "a castle", "a dragon", "a lighthouse", "an old man",
                "a young woman", "a fox", "a tiger", "a city skyline", "a bowl of fruit", "a vintage car",
                "a sailboat", "a treehouse", "a steampunk airship", "a samurai", "a koi pond", "a mushroom forest",
                "a teapot", "a violin", "a waterfall", "a desert oasis", "a space station", "a library",
                "an owl", "a hummingbird", "a polar bear", "a jellyfish", "a knight", "a wizard", "a bakery"],
    "action": ["sitting on", "standing next to", "flying over", "reading", "playing with", "hiding behind",
               "painting", "riding", "looking at", "dancing in", "sleeping under", "walking through"],
    "object": ["a red balloon", "the moon", "a stack of books", "a wooden bridge", "a neon sign", "the ocean",
               "a field of sunflowers", "a crystal ball", "an umbrella", "a chessboard", "a birthday cake",
               "a pile of leaves", "a rainbow", "a snowman", "a glass of wine", "a tiny planet"],
    "style": ["oil painting", "watercolor", "digital art", "pencil sketch", "photorealistic", "anime style",
              "studio ghibli style", "by greg rutkowski", "trending on artstation", "unreal engine 5",
              "octane render", "8k", "4K UHD", "HDR", "bokeh", "cinematic lighting", "volumetric fog",
              "low poly", "isometric", "ukiyo-e", "art nouveau", "baroque", "vaporwave", "synthwave",
              "film grain", "35mm photograph", "macro shot", "wide angle", "portrait", "concept art"],
    "adjective": ["beautiful", "tiny", "giant", "ancient", "futuristic", "glowing", "rusty", "colorful",
                  "mysterious", "cozy", "surreal", "minimalist", "ornate", "fluffy", "shiny", "weathered"],
}

PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["…", "—", "–", "«", "»", "“", "”", "‘", "’", "¡", "¿", "·",
                                                     "§", "¶", "†", "‡", "•", "‰", "′", "″", "※", "¤", "¦", "¨"]
EMOJI = ["🐱", "🐶", "🦊", "🐉", "🌸", "🌈", "🔥", "✨", "🎨", "🚀", "🏰", "🌊", "🍕", "🎸", "👍", "👍🏻", "👍🏿",
         "👩‍🚀", "🧙‍♂️", "🏳️‍🌈", "❤️", "☀️", "⚡", "🇺🇸", "🇩🇪", "🫶", "🥰", "😂", "🤖", "👾"]
ACCENTED = ["café", "crème brûlée", "jalapeño", "façade", "über", "smörgåsbord", "Dvořák", "Müller", "Øresund",
            "piñata", "Ibiza à la plage", "naïveté", "coöperate", "Curaçao", "Gödel", "Bjørk", "Škoda", "Ţară",
            "Hà Nội", "Nguyễn", "Türkçe", "çiçek", "ğüşiöç", "Ĉu vi", "Žižek"]
CJK = ["猫", "犬", "山", "川", "東京", "北京", "上海", "龍", "桜の花", "富士山", "ラーメン", "寿司", "すし", "こんにちは",
       "안녕하세요", "서울", "김치", "一二三", "春夏秋冬", "水墨画", "書道", "ㄅㄆㄇ", "〇", "々", "〜", "。", "、", "「引用」"]
OTHER_SCRIPTS = ["Привет мир", "Ελλάδα", "مرحبا", "שלום", "नमस्ते", "สวัสดี", "გამარჯობა", "Բարեւ", "ሰላም",
                 "வணக்கம்", "ನಮಸ್ಕಾರ", "ສະບາຍດີ", "မင်္ဂလာပါ", "ᏣᎳᎩ", "ᚠᚢᚦ", "Ꭿ", "ⴰⵣⵓⵍ"]
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2002", "\u2009", "\u200a", "\u202f", "\u205f",
              "\u1680", "\u2028", "\u2029", "\u0085", "\u000b", "\u000c", " \t \n "]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "’s", "'x"]


def gen_caption(r):
    s = f"{r.choice(WORDS['adjective'])} {r.choice(WORDS['subject'])} {r.choice(WORDS['action'])} " \
        f"{r.choice(WORDS['object'])}"
    styles = r.sample(WORDS["style"], r.randint(0, 4))
    if styles:
        s += ", " + ", ".join(styles)
    if r.random() < 0.3:
        s = s.capitalize()
    if r.random() < 0.2:
        s = s.upper()
    if r.random() < 0.3:
        s += r.choice([".", "!", "?", "...", " !!!", ";", ""])
    return s


def gen_weighted(r):
    parts = []
    for _ in range(r.randint(2, 6)):
        w = r.choice(WORDS["style"] + WORDS["adjective"])
        kind = r.randint(0, 4)
        if kind == 0:
            w = "(" * r.randint(1, 3) + w + ")" * r.randint(1, 3)
        elif kind == 1:
            w = f"({w}:{r.choice(['0.5', '1.1', '1.25', '1.4', '2'])})"
        elif kind == 2:
            w = "[" + w + "]"
        elif kind == 3:
            w = f"<lora:{w.replace(' ', '_')}:{r.randint(1, 9) / 10}>"
        parts.append(w)
    return ", ".join(parts)


def gen_punct(r):
    out = []
    for _ in range(r.randint(2, 8)):
        k = r.randint(0, 3)
        if k == 0:
            out.append("".join(r.choice(PUNCT) for _ in range(r.randint(1, 6))))
        elif k == 1:
            out.append(r.choice(WORDS["object"]).split()[-1])
        elif k == 2:
            out.append(str(r.randint(0, 10 ** r.randint(1, 7))))
        else:
            out.append(r.choice(CONTRACTIONS))
    joiner = r.choice(["", " ", "  "])
    return joiner.join(out)


def gen_digits(r):
    forms = [lambda: str(r.randint(0, 10 ** 9)), lambda: f"{r.random() * 1000:.{r.randint(1, 5)}f}",
             lambda: f"{r.randint(1, 9999)}x{r.randint(1, 9999)}", lambda: f"{r.randint(1900, 2100)}s",
             lambda: f"v{r.randint(0, 9)}.{r.randint(0, 99)}.{r.randint(0, 9)}", lambda: f"#{r.randint(0, 0xffffff):06x}",
             lambda: f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(1990, 2030)}", lambda: f"{r.randint(0, 100)}%",
             lambda: "".join(r.choice("0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९¹²³½¼⅔Ⅷ") for _ in range(r.randint(1, 8)))]
    return " ".join(r.choice(forms)() for _ in range(r.randint(1, 6))) + " " + r.choice(WORDS["subject"])


def gen_unicode_mix(r):
    pools = [ACCENTED, CJK, EMOJI, OTHER_SCRIPTS]
    out = [r.choice(WORDS["subject"])]
    for _ in range(r.randint(2, 7)):
        out.append(r.choice(r.choice(pools)))
    r.shuffle(out)
    return r.choice(["", " ", ", "]).join(out) if r.random() < 0.3 else " ".join(out)


def gen_whitespace(r):
    words = (gen_caption(r)).split()
    out = r.choice(["", *WHITESPACE])
    for w in words:
        out += w + r.choice(WHITESPACE)
    return out


def gen_url(r):
    host = r.choice(["example.com", "www.art-station.com", "i.imgur.com", "github.com/openai/CLIP",
                     "huggingface.co/Deci/DeciDiffusion-v1-0", "xn--bcher-kva.example", "例え.テスト"])
    path = "/".join(r.choice(["img", "a_b", "2023", "photo-1", "x%20y", "~user", "index.html", "q?x=1&y=2"])
                    for _ in range(r.randint(0, 4)))
    url = f"{r.choice(['http', 'https', 'ftp'])}://{host}/{path}"
    return f"{r.choice(WORDS['subject'])} {url} {r.choice(WORDS['style'])}"


def gen_case(r):
    s = gen_caption(r)
    return "".join(c.upper() if r.random() < 0.5 else c for c in s)


def gen_long(r):
    n = r.randint(20, 60)
    parts = [gen_caption(r) for _ in range(n // 10 + 1)]
    s = ", ".join(parts)
    if r.random() < 0.3:
        s += " " + " ".join(r.choice(EMOJI + CJK) for _ in range(r.randint(5, 30)))
    return s


def gen_special_literal(r):
    pieces = ["<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>", "<|endoftext", "|>", "<|", "endoftext"]
    out = []
    for _ in range(r.randint(2, 6)):
        out.append(r.choice(pieces) if r.random() < 0.5 else r.choice(WORDS["subject"]).split()[-1])
    return r.choice(["", " "]).join(out)


def gen_contractions(r):
    out = []
    for _ in range(r.randint(2, 6)):
        w = r.choice(["it", "DOG", "cat", "Y", "rock", "'", "''", "o", "ma", "ſ"])
        out.append(w + r.choice(CONTRACTIONS) + r.choice(["", "s", "x", "!", "'"]))
    return r.choice([" ", ""]).join(out)


def gen_sweep(r, stable):
    """Characters from many Unicode blocks between letters, digits and spaces: exposes how each one is
    classified (letter / number / other / whitespace / removed) and lower-cased."""
    chars = []
    while len(chars) < r.randint(6, 14):
        cp = r.choice(stable)
        chars.append(chr(cp))
    out = []
    for c in chars:
        out.append(r.choice(["", "q", "Q", "7", " ", "-"]) + c)
    return "".join(out)


def stable_code_points():
    """Code points assigned since Unicode 3.2 (so every Unicode table involved agrees they exist), not
    surrogates or private use."""
    ranges = [(0x20, 0x2FF), (0x300, 0x36F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
              (0x10A0, 0x10FF), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x218F),
              (0x2190, 0x23FF), (0x2460, 0x24FF), (0x2500, 0x27BF), (0x2E80, 0x2FDF), (0x3000, 0x30FF),
              (0x3130, 0x318F), (0x3200, 0x33FF), (0x3400, 0x3500), (0x4E00, 0x4F00), (0x9F00, 0x9FA5),
              (0xAC00, 0xAD00), (0xF900, 0xFAFF), (0xFB00, 0xFDFF), (0xFE00, 0xFFEF), (0x1D400, 0x1D7FF),
              (0x20000, 0x20100), (0x2F800, 0x2FA1D)]
    cps = []
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            cat = unicodedata.ucd_3_2_0.category(chr(cp))
            if cat in ("Cn", "Cs", "Co"):
                continue
            if unicodedata.category(chr(cp)) != cat:  # category changed between versions: skip
                continue
            cps.append(cp)
    return cps


GENERATORS = [(gen_caption, 140), (gen_weighted, 40), (gen_punct, 60), (gen_digits, 40), (gen_unicode_mix, 60),
              (gen_whitespace, 40), (gen_url, 20), (gen_case, 20), (gen_long, 40), (gen_special_literal, 25),
              (gen_contractions, 30)]


def build_prompts():
    r = random.Random(20240317)
    prompts = list(HAND_WRITTEN)
    for gen, count in GENERATORS:
        prompts += [gen(r) for _ in range(count)]
    stable = stable_code_points()
    prompts += [gen_sweep(r, stable) for _ in range(200)]
    seen, unique = set(), []
    for p in prompts:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


SD2_PROMPTS = [
    "", "a photo of a cat", "hello!", "wow!!! ok", "a!b", "! start", "end !", "!", "!!", "!!!!", "¡Hola!",
    "a photo of a cat!!!", "beautiful landscape, masterpiece!, (best quality:1.2)!", "<|endoftext|>!",
    "!<|startoftext|>!", "'s!", "emoji🐱!🐶", "!" * 100, "yes! " * 40, "shout!!!", "a!!b!!c", "?!", "!?",
]


# ----------------------------------------------------------------------------------------------
# 3. Oracles


def run_oracle(tokenizer, prompts):
    """ids (truncated, unpadded), untruncated ids when truncated, and diffusers' removed text."""
    cases = []
    for p in prompts:
        enc = tokenizer(p, padding="max_length", max_length=MAX_LENGTH, truncation=True)
        ids, mask = enc.input_ids, enc.attention_mask
        n = sum(mask)
        assert len(ids) == MAX_LENGTH and mask == [1] * n + [0] * (MAX_LENGTH - n)
        assert ids[n:] == [tokenizer.pad_token_id] * (MAX_LENGTH - n)
        full = tokenizer(p, padding="longest").input_ids
        case = {"ids": ids[:n]}
        # diffusers' check in StableDiffusionPipeline.encode_prompt
        if len(full) >= MAX_LENGTH and full != ids:
            case["untruncated"] = full
            case["removed"] = tokenizer.batch_decode([full[MAX_LENGTH - 1:-1]])[0]
        cases.append(case)
    return cases


def unicode_classes():
    """Per code point of the sweep set: class under Python `regex` and under Oniguruma (tokenizers), as
    run-length rows [first, count, class] with class L (\\p{L}), N (\\p{N}), S (\\s) or O (other); plus
    lower-case mappings where Python's str.lower and Rust's char::to_lowercase (tokenizers) differ from
    the identity."""
    import regex
    from tokenizers import Regex, normalizers, pre_tokenizers
    cps = stable_code_points()

    def python_class(c):
        if regex.match(r"\p{L}", c): return "L"
        if regex.match(r"\p{N}", c): return "N"
        if regex.match(r"\s", c): return "S"
        return "O"

    text = "".join(chr(cp) for cp in cps)
    onig = ["O"] * len(cps)
    for cls, pattern in (("S", r"\s"), ("N", r"\p{N}"), ("L", r"\p{L}")):
        split = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
        for _, (start, end) in split.pre_tokenize_str(text):
            for k in range(start, end):
                onig[k] = cls

    def runs(classes):
        rows = []
        for cp, cls in zip(cps, classes):
            if rows and rows[-1][2] == cls and rows[-1][0] + rows[-1][1] == cp:
                rows[-1][1] += 1
            else:
                rows.append([cp, 1, cls])
        return rows

    lower = normalizers.Lowercase()
    mappings = []
    for cp in cps:
        c = chr(cp)
        py, rs = c.lower(), lower.normalize_str(c)
        if py != c or rs != c:
            mappings.append([cp, py, rs])
    return {"python_regex": runs([python_class(chr(cp)) for cp in cps]), "oniguruma": runs(onig),
            "lowercase": mappings}


def oracle_main(args):
    """Runs inside whichever venv is current; reads prompts and config folders, writes results."""
    import transformers
    from transformers import CLIPTokenizer
    job = json.loads(Path(args.oracle_in).read_text(encoding="utf-8"))
    out = {"transformers": transformers.__version__}
    for name, folder in job["folders"].items():
        tok = CLIPTokenizer.from_pretrained(folder)
        out[name] = {"class": type(tok).__name__, "pad_token": str(tok.pad_token), "pad_id": tok.pad_token_id,
                     "max_length": tok.model_max_length, "cases": run_oracle(tok, job["prompts"][name])}
        if transformers.__version__.startswith("4."):
            from transformers import CLIPTokenizerFast
            fast = CLIPTokenizerFast.from_pretrained(folder)
            out[name + "_fast"] = {"class": type(fast).__name__, "pad_id": fast.pad_token_id,
                                   "cases": run_oracle(fast, job["prompts"][name])}
    Path(args.oracle_out).write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


def ensure_legacy_venv():
    py = LEGACY_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LEGACY_VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import transformers; print(transformers.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != LEGACY_REQUIREMENT.split("==")[1]:
        subprocess.run([str(py), "-m", "pip", "install", "-q", LEGACY_REQUIREMENT], check=True)
    return py


def call_oracle(python, job, tmp: Path, tag):
    jin, jout = tmp / f"{tag}_in.json", tmp / f"{tag}_out.json"
    jin.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false")
    subprocess.run([str(python), __file__, "--oracle-in", str(jin), "--oracle-out", str(jout)], check=True, env=env)
    return json.loads(jout.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------
# 4. Fixtures


def compact_json(path: Path, obj):
    """One case per line keeps the fixture diffable and small."""
    lines = ["{"]
    items = list(obj.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if k == "cases":
            lines.append(f'  "cases": [')
            for j, c in enumerate(v):
                lines.append("    " + json.dumps(c, ensure_ascii=False, separators=(",", ":"))
                             + ("," if j + 1 < len(v) else ""))
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{comma}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def merge_cases(prompts, primary, legacy):
    cases = []
    for p, a, b in zip(prompts, primary, legacy):
        c = {"text": p, **a}
        if b != a:
            c["legacy"] = b
        cases.append(c)
    return cases


def describe_differences(prompts, a, b, label):
    diffs = [p for p, x, y in zip(prompts, a, b) if x["ids"] != y["ids"]]
    print(f"  {label}: {len(diffs)} of {len(prompts)} prompts differ in ids")
    for p in diffs[:8]:
        print(f"    e.g. {p[:60]!r}")
    return len(diffs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle-in")
    ap.add_argument("--oracle-out")
    ap.add_argument("--skip-download", action="store_true", help="reuse Resources/clip-tokenizer as committed")
    args = ap.parse_args()
    if args.oracle_in:
        return oracle_main(args)

    if not args.skip_download:
        print("deriving Resources/clip-tokenizer from open_clip_torch", OPEN_CLIP_VERSION)
        derive_vocabulary(RESOURCES)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_variants()

    from transformers import CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(str(RESOURCES))
    known = {"a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
             "An astronaut riding a horse": [49406, 550, 18376, 6765, 320, 4558, 49407]}
    for text, want in known.items():
        got = tok(text).input_ids
        assert got == want, (text, got, want)
    assert tok.pad_token_id == 49407 and tok.model_max_length == MAX_LENGTH and len(tok) == 49408
    print("  transformers loads the derived files; known ids match")

    prompts = build_prompts()
    assert len(prompts) >= 500, len(prompts)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        folders = {"sd15": str(RESOURCES), "sd2": str(assemble(FIXTURES / "sd2-pad", tmp / "sd2")),
                   "modern": str(assemble(FIXTURES / "modern-format", tmp / "modern"))}
        job = {"folders": folders, "prompts": {"sd15": prompts, "sd2": SD2_PROMPTS, "modern": SD2_PROMPTS}}
        print(f"running the transformers 5 oracle on {len(prompts)} prompts")
        new = call_oracle(sys.executable, job, tmp, "t5")
        print("running the transformers 4 (legacy Python CLIPTokenizer) oracle")
        old = call_oracle(ensure_legacy_venv(), job, tmp, "t4")

    n_legacy = describe_differences(prompts, new["sd15"]["cases"], old["sd15"]["cases"],
                                    "transformers 5 CLIPTokenizer vs transformers 4 slow CLIPTokenizer")
    n_fast4 = describe_differences(prompts, new["sd15"]["cases"], old["sd15_fast"]["cases"],
                                   "transformers 5 CLIPTokenizer vs transformers 4 CLIPTokenizerFast")
    describe_differences(prompts, old["sd15"]["cases"], old["sd15_fast"]["cases"],
                         "transformers 4 slow vs transformers 4 fast")
    for name in ("sd2", "modern"):
        describe_differences(SD2_PROMPTS, new[name]["cases"], old[name]["cases"], f"{name}: t5 vs t4 slow")

    meta = {
        "generated_by": "tools/make_tokenizer_fixtures.py",
        "oracle": f"transformers {new['transformers']} CLIPTokenizer (tokenizers backend); 'legacy' entries: "
                  f"transformers {old['transformers']} slow CLIPTokenizer without ftfy, present only where different",
        "differences": {"legacy_vs_tokenizers": n_legacy, "transformers4_fast_vs_tokenizers": n_fast4},
        "max_length": MAX_LENGTH,
    }
    classes = unicode_classes()
    classes_path = FIXTURES / "unicode_classes.json"
    classes_path.write_text("{\n" + ",\n".join(
        f'  "{k}": ' + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for k, v in classes.items())
        + "\n}\n", encoding="utf-8")
    print(f"  wrote unicode_classes.json: {classes_path.stat().st_size} bytes")
    for name, fname in (("sd15", "clip_prompts.json"), ("sd2", "sd2_pad_prompts.json"),
                        ("modern", "modern_format_prompts.json")):
        prompts_here = prompts if name == "sd15" else SD2_PROMPTS
        obj = dict(meta, pad_id=new[name]["pad_id"], legacy_pad_id=old[name]["pad_id"],
                   cases=merge_cases(prompts_here, new[name]["cases"], old[name]["cases"]))
        compact_json(FIXTURES / fname, obj)
        print(f"  wrote {fname}: {len(prompts_here)} prompts, pad id {new[name]['pad_id']} "
              f"(legacy {old[name]['pad_id']}), {(FIXTURES / fname).stat().st_size} bytes")


if __name__ == "__main__":
    main()
