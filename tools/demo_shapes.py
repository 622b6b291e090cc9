"""Procedural captioned pictures for the bundled demo model, and the checks that judge its output.

Each picture is one flat-coloured shape (circle, square or triangle; small or large; in a corner
or the centre) on a flat background, drawn with 4x4 supersampled anti-aliasing. Captions name the
shape's colour and kind, and optionally its size, its position and the background colour:
"a small yellow square in the top left corner on a green background".

`judge(image, prompt)` reads a generated picture back: the background is the palette colour that
covers most pixels, the shape colour the most common other palette colour, the position the
centroid of the shape's pixels (nearest anchor point). The Swift test
(Tests/DeciDiffusionTests/DemoModelTests.swift) implements the same rules with the same constants;
keep them in step.
"""
import numpy as np

SIZE = 64

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 40),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
SIZES = ["small", "large"]
POSITIONS = ["top left", "top right", "bottom left", "bottom right", "center"]
POSITION_PHRASES = {
    "top left": "in the top left corner",
    "top right": "in the top right corner",
    "bottom left": "in the bottom left corner",
    "bottom right": "in the bottom right corner",
    "center": "in the center",
}
# Shape "radius" in pixels (half the side of a square, circumradius-ish for a triangle).
RADIUS = {"small": (7.5, 10.0), "large": (13.5, 16.5)}
# Where a shape's centre sits (x or y, pixels) for each size, before +-JITTER.
CORNER_OFFSET = {"small": 16.5, "large": 20.5}
JITTER = 2.5

# (colour, shape, background) combinations never drawn in training, to test composition.
HELD_OUT = {
    ("green", "triangle", "white"),
    ("yellow", "circle", "black"),
    ("blue", "square", "red"),
    ("white", "circle", "green"),
    ("red", "triangle", "yellow"),
    ("black", "square", "blue"),
}

# The evaluation prompts (the Swift test uses the same list and seeds 1000 + index).
EVAL_PROMPTS = [
    "a red circle on a blue background",
    "a small yellow square in the top left corner on a green background",
    "a large green triangle in the center on a white background",
    "a yellow circle in the bottom right corner on a black background",
    "a blue square in the top right corner on a red background",
    "a large white circle in the bottom left corner on a green background",
    "a small red triangle in the center on a yellow background",
    "a black square in the top left corner on a blue background",
    "a blue circle in the top left corner on a yellow background",
    "a large red square in the bottom right corner on a white background",
    "a green circle in the top right corner on a black background",
    "a white triangle in the bottom left corner on a blue background",
    "a small black circle in the center on a white background",
    "a yellow triangle in the top right corner on a red background",
    "a large blue triangle in the bottom left corner on a green background",
    "a green square in the bottom right corner on a yellow background",
    "a red circle in the top left corner on a black background",
    "a white square in the center on a red background",
    "a black triangle in the bottom right corner on a white background",
    "a yellow square on a blue background",
    "a small green circle in the bottom left corner on a red background",
    "a large yellow circle in the center on a green background",
    "a blue triangle in the top left corner on a white background",
    "a red square in the top right corner on a green background",
]
EVAL_SEED_BASE = 1000


def sample_attributes(rng, allow_held_out=False):
    """Random (colour, shape, size, position, background), skipping held-out combinations."""
    while True:
        colour = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
        bg = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
        if bg == colour:
            continue
        shape = SHAPES[rng.integers(len(SHAPES))]
        if not allow_held_out and (colour, shape, bg) in HELD_OUT:
            continue
        size = SIZES[rng.integers(len(SIZES))]
        pos = POSITIONS[rng.integers(len(POSITIONS))]
        return {"colour": colour, "shape": shape, "size": size, "position": pos, "background": bg}


def centre_of(position, size):
    off = CORNER_OFFSET[size]
    xs = {"left": off, "right": SIZE - off}
    ys = {"top": off, "bottom": SIZE - off}
    if position == "center":
        return SIZE / 2, SIZE / 2
    v, h = position.split()
    return xs[h], ys[v]


def draw(attrs, rng, supersample=4):
    """uint8 [SIZE, SIZE, 3] picture of `attrs`, with random jitter of centre and radius from `rng`."""
    n = SIZE * supersample
    cx, cy = centre_of(attrs["position"], attrs["size"])
    cx += rng.uniform(-JITTER, JITTER)
    cy += rng.uniform(-JITTER, JITTER)
    lo, hi = RADIUS[attrs["size"]]
    r = rng.uniform(lo, hi)
    coords = (np.arange(n) + 0.5) / supersample
    x, y = np.meshgrid(coords, coords)
    dx, dy = x - cx, y - cy
    shape = attrs["shape"]
    if shape == "circle":
        mask = dx * dx + dy * dy <= r * r
    elif shape == "square":
        half = r * 0.9
        mask = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    else:  # upright equilateral triangle, circumradius 1.3 r, centred on its height
        R = r * 1.3
        top = -0.9 * R
        base = 0.6 * R
        half_w = R * 0.866
        within_y = (dy >= top) & (dy <= base)
        frac = (dy - top) / (base - top)
        mask = within_y & (np.abs(dx) <= frac * half_w)
    cover = mask.reshape(SIZE, supersample, SIZE, supersample).mean(axis=(1, 3))[..., None]
    fg = np.array(COLOURS[attrs["colour"]], dtype=np.float64)
    bg = np.array(COLOURS[attrs["background"]], dtype=np.float64)
    img = cover * fg + (1 - cover) * bg
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def caption(attrs, rng):
    """A caption of `attrs`; size, position and background are each sometimes left out."""
    words = ["a"]
    if rng.random() < 0.6:
        words.append(attrs["size"])
    words += [attrs["colour"], attrs["shape"]]
    if rng.random() < 0.85:
        words.append(POSITION_PHRASES[attrs["position"]])
    if rng.random() < 0.9:
        words += ["on", "a", attrs["background"], "background"]
    return " ".join(words)


def parse_prompt(prompt):
    """Attributes a prompt asks for (missing ones are None)."""
    p = prompt.lower()
    out = {"colour": None, "shape": None, "size": None, "position": None, "background": None}
    for pos, phrase in POSITION_PHRASES.items():
        if phrase in p:
            out["position"] = pos
            p = p.replace(phrase, " ")
    for name in COLOUR_NAMES:
        if f"{name} background" in p:
            out["background"] = name
            p = p.replace(f"{name} background", " ")
    for name in COLOUR_NAMES:
        if f" {name} " in f" {p} ":
            out["colour"] = name
    for s in SHAPES:
        if s in p:
            out["shape"] = s
    for s in SIZES:
        if f" {s} " in f" {p} ":
            out["size"] = s
    return out


# Reading a picture back.
MATCH_DISTANCE = 90.0  # max RGB distance for a pixel to count as a palette colour
MIN_SHAPE_PIXELS = 12
# Anchors for the position check (pixels): corners halfway between the small and large offsets.
ANCHORS = {
    "top left": (18.0, 18.0), "top right": (46.0, 18.0),
    "bottom left": (18.0, 46.0), "bottom right": (46.0, 46.0), "center": (32.0, 32.0),
}
# Shape pixel count separating small from large (small about 110-325 px, large 370-900 px).
SIZE_SPLIT = 345


def read_picture(image):
    """What a picture shows: {'background', 'colour', 'position', 'size', 'shape_pixels'} (None when unclear)."""
    img = np.asarray(image, dtype=np.float64)
    pal = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float64)
    d = np.sqrt(((img[:, :, None, :] - pal[None, None]) ** 2).sum(-1))
    cls = d.argmin(-1)
    cls[d.min(-1) > MATCH_DISTANCE] = -1
    counts = np.array([(cls == i).sum() for i in range(len(pal))])
    bg = int(counts.argmax())
    rest = counts.copy()
    rest[bg] = -1
    fg = int(rest.argmax())
    out = {"background": COLOUR_NAMES[bg], "colour": None, "position": None, "size": None,
           "shape_pixels": int(max(rest[fg], 0))}
    if rest[fg] < MIN_SHAPE_PIXELS:
        return out
    out["colour"] = COLOUR_NAMES[fg]
    ys, xs = np.nonzero(cls == fg)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    out["position"] = min(ANCHORS, key=lambda k: (ANCHORS[k][0] - cx) ** 2 + (ANCHORS[k][1] - cy) ** 2)
    out["size"] = "large" if rest[fg] >= SIZE_SPLIT else "small"
    return out


def judge(image, prompt):
    """(ok, details): ok when background, shape colour and (if asked) position all match the prompt."""
    want = parse_prompt(prompt)
    got = read_picture(image)
    checks = {}
    for key in ["background", "colour", "position", "size"]:
        if want[key] is not None:
            checks[key] = got[key] == want[key]
    main = [checks[k] for k in ["background", "colour", "position"] if k in checks]
    return all(main), {"want": want, "got": got, "checks": checks}
