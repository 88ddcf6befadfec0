"""A parametric 2D face whose geometry follows the 12 DISFA action units, rendered in five styles.

Every shape is an analytic signed distance (or a vertical distance, for the lips) evaluated on the pixel grid,
turned into coverage with a one-pixel ramp, so edges are anti-aliased and a clip's T frames render in one
vectorised pass: per-frame quantities (pose, AU intensities) are ``[T, 1, 1]`` arrays broadcast against the
``[1, H, W]`` grid.

Coordinates: the image spans [-1, 1] on both axes, y pointing down; the face frame is the image frame undone
by the head's position, roll and scale, in which the head ellipse is about 1.2 wide and 1.5 tall. The face is
symmetric, so features are drawn once in ``|x|`` and appear on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlab.data.contract import ACTION_UNITS

# Render styles (domains), in the order ``domain.npy`` indexes them.
RENDER_STYLES = ("line", "shaded", "lowlight", "clutter", "colourshift")

_SKIN = np.array([[0.98, 0.85, 0.75], [0.94, 0.76, 0.62], [0.85, 0.64, 0.48],
                  [0.68, 0.47, 0.33], [0.52, 0.35, 0.24], [0.36, 0.24, 0.17]])
_HAIR = np.array([[0.08, 0.07, 0.07], [0.25, 0.15, 0.08], [0.45, 0.30, 0.15],
                  [0.85, 0.72, 0.45], [0.60, 0.25, 0.10], [0.70, 0.70, 0.72]])
_IRIS = np.array([[0.35, 0.20, 0.10], [0.25, 0.45, 0.70], [0.30, 0.50, 0.30], [0.15, 0.10, 0.08]])
HAIR_STYLES = ("short", "fringe", "long", "bun", "bald")
_INK = np.array([0.12, 0.08, 0.07], np.float32)  # wrinkles, lid lines, nostrils


@dataclass(frozen=True)
class Face:
    """One identity's face: proportions in face units and colours in [0, 1] RGB."""

    head_w: float  # half-width of the head ellipse
    head_h: float  # half-height of the head ellipse
    jaw: float  # how much the lower face narrows towards the chin
    eye_dx: float  # half the distance between the eye centres
    eye_y: float
    eye_w: float  # half-width of an eye
    eye_h: float  # half-height of an open eye at rest
    brow_gap: float  # brow height above the eye centre
    brow_len: float
    brow_thick: float
    brow_arch: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float  # half-width of the mouth at rest
    lip_up: float  # upper lip thickness
    lip_lo: float  # lower lip thickness
    skin: np.ndarray  # (3,)
    hair: np.ndarray  # (3,)
    iris: np.ndarray  # (3,)
    hair_style: int  # index into HAIR_STYLES


@dataclass(frozen=True)
class Pose:
    """Head pose per frame: centre in image units, scale, roll and yaw in radians, each ``[T]``."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    roll: np.ndarray
    yaw: np.ndarray


def sample_face(rng: np.random.Generator) -> Face:
    """Draws one identity's face shape, colours and hair."""
    u = rng.uniform
    return Face(
        head_w=u(0.50, 0.62), head_h=u(0.68, 0.80), jaw=u(0.05, 0.30),
        eye_dx=u(0.20, 0.26), eye_y=u(-0.12, -0.04), eye_w=u(0.085, 0.11), eye_h=u(0.040, 0.052),
        brow_gap=u(0.10, 0.13), brow_len=u(0.15, 0.20), brow_thick=u(0.016, 0.032), brow_arch=u(0.0, 0.04),
        nose_y=u(0.14, 0.21), nose_w=u(0.06, 0.09),
        mouth_y=u(0.36, 0.43), mouth_w=u(0.13, 0.17), lip_up=u(0.018, 0.030), lip_lo=u(0.024, 0.038),
        skin=np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 0.03, 3), 0, 1),
        hair=np.clip(_HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 0.03, 3), 0, 1),
        iris=_IRIS[rng.integers(len(_IRIS))],
        hair_style=int(rng.integers(len(HAIR_STYLES))),
    )


def sample_pose(rng: np.random.Generator, num_frames: int, amount: float = 1.0) -> Pose:
    """Draws a head pose that drifts slowly over the clip.

    Args:
        rng: the clip's random generator.
        num_frames: frames in the clip (T).
        amount: scales every jitter; 0 gives a centred, upright, frontal face.
    """
    t = np.linspace(-0.5, 0.5, num_frames)

    def drift(base: float, slope: float) -> np.ndarray:
        return amount * (rng.uniform(-base, base) + rng.uniform(-slope, slope) * t)

    # Scale 1.2 frames the face tightly, as a face detector's crop would: chin near the bottom edge.
    return Pose(cx=drift(0.06, 0.03), cy=drift(0.05, 0.02) + 0.05, scale=1.2 + drift(0.08, 0.03),
                roll=drift(0.12, 0.05), yaw=drift(0.3, 0.1))


def _cover(d: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of the region ``d < 0``: a one-pixel linear ramp across the boundary."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _band(y: np.ndarray, top: np.ndarray, bottom: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Coverage of the rows between two curves ``top(x) <= y <= bottom(x)``."""
    return np.clip(0.5 + np.minimum(y - top, bottom - y) / px, 0.0, 1.0)


def _ellipse(x: np.ndarray, y: np.ndarray, rx, ry) -> np.ndarray:
    """Signed distance to an origin-centred ellipse, to first order (exact on the boundary, which AA needs)."""
    gx, gy = x / (rx * rx), y / (ry * ry)
    return (x * gx + y * gy - 1.0) / (2.0 * np.sqrt(gx * gx + gy * gy) + 1e-6)


def _segment(x: np.ndarray, y: np.ndarray, ax, ay, bx, by) -> np.ndarray:
    """Distance to the segment from (ax, ay) to (bx, by)."""
    px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
    h = np.clip((px * dx + py * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    ex, ey = px - h * dx, py - h * dy
    return np.sqrt(ex * ex + ey * ey)  # faster than np.hypot, and no overflow at these scales


def _paint(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Composites ``colour`` (RGB or ``[3, T, H, W]``) over ``img`` ``[3, T, H, W]`` with coverage ``alpha``.

    Images are channel-first while drawing: blending contiguous planes is about 8x faster than ``[..., 3]``.
    """
    colour = np.asarray(colour, np.float32)
    if colour.ndim == 1:
        colour = colour.reshape(3, 1, 1, 1)
    img += alpha * (colour - img)


class _Canvas:
    """A window of the frames ``[3, T, h, w]`` with its pixels' face coordinates, and the drawing operations.

    Painting writes through to the frames (the window is a view). Pen strokes (wrinkles, lids, nostrils) collect
    in one coverage map and are painted together by ``flush``: a third of the work of painting each one.
    """

    def __init__(self, img: np.ndarray, face: Face, pose: Pose, rows: slice, cols: slice, lit: np.ndarray | None):
        size = img.shape[2]
        self.img = img[:, :, rows, cols]
        grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
        dx = grid[None, None, cols] - _per_frame(pose.cx)  # (T, 1, w)
        dy = grid[None, rows, None] - _per_frame(pose.cy)  # (T, h, 1)
        cr, sr, s = _per_frame(np.cos(pose.roll)), _per_frame(np.sin(pose.roll)), _per_frame(pose.scale)
        self.x, self.y = (cr * dx + sr * dy) / s, (cr * dy - sr * dx) / s  # (T, h, w) face frame, head upright
        self.px = (2.0 / size) / s  # one pixel in face units, (T, 1, 1)
        # Yaw: the outline narrows a little while the features slide towards the turn and squash more.
        cos_yaw, sin_yaw = _per_frame(np.cos(pose.yaw)), _per_frame(np.sin(pose.yaw))
        self.xh = self.x / (0.85 + 0.15 * cos_yaw)  # head outline
        self.xf = (self.x - 0.45 * face.head_w * sin_yaw) / cos_yaw  # features
        self.ax = np.abs(self.xf)  # mirrored: symmetric features are drawn once
        if lit is None:
            self.lum = np.ones_like(self.y)
        else:  # Lambertian shading of the head as a half ellipsoid, lit from direction ``lit``
            nx, ny = self.xh / face.head_w, self.y / face.head_h
            nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
            self.lum = 0.6 + 0.45 * np.clip(nx * lit[0] + ny * lit[1] + nz * lit[2], 0.0, 1.0)
        self.ink = np.zeros(self.y.shape, np.float32)

    def cover(self, d: np.ndarray, blur: float = 1.0) -> np.ndarray:
        return _cover(d, blur * self.px)

    def stroke(self, d: np.ndarray, width: float = 0.5) -> np.ndarray:
        """Coverage of a line ``2 * width`` pixels wide along ``d == 0`` (``d`` a distance)."""
        return _cover(d - width * self.px, self.px)

    def shade(self, colour) -> np.ndarray:
        return np.asarray(colour, np.float32).reshape(3, 1, 1, 1) * self.lum  # (3, T, h, w)

    def paint(self, alpha: np.ndarray, colour) -> None:
        _paint(self.img, alpha, colour)

    def pen(self, alpha: np.ndarray) -> None:
        np.maximum(self.ink, alpha, out=self.ink)

    def flush(self) -> None:
        _paint(self.img, self.ink, _INK)
        self.ink.fill(0.0)


def _per_frame(values) -> np.ndarray:
    """Per-frame scalars ``[T]`` as ``[T, 1, 1]`` float32, to broadcast against pixel grids."""
    return np.asarray(values, np.float32).reshape(-1, 1, 1)


def _feature_window(pose: Pose, size: int) -> tuple[slice, slice]:
    """Rows and columns that hold the eyes, brows, nose, mouth and wrinkles in every frame.

    The features lie within ``|x| < 0.62``, ``-0.72 < y < 0.8`` in face units whatever the AUs and yaw, so
    the many feature layers skip the background around the head (tests/data/test_synth.py checks the bound).
    """
    fx, fy = np.array([-0.62, 0.62, -0.62, 0.62]), np.array([-0.72, -0.72, 0.8, 0.8])
    cos, sin = np.cos(pose.roll)[:, None], np.sin(pose.roll)[:, None]
    x = pose.cx[:, None] + pose.scale[:, None] * (cos * fx - sin * fy)  # (T, 4) corners in the image
    y = pose.cy[:, None] + pose.scale[:, None] * (sin * fx + cos * fy)
    to_pixel = lambda v: (v + 1.0) / 2.0 * size  # noqa: E731
    rows = slice(max(0, int(to_pixel(y.min())) - 1), min(size, int(np.ceil(to_pixel(y.max()))) + 1))
    cols = slice(max(0, int(to_pixel(x.min())) - 1), min(size, int(np.ceil(to_pixel(x.max()))) + 1))
    return rows, cols


def _face_layers(img: np.ndarray, face: Face, au: np.ndarray, pose: Pose, lit: np.ndarray | None,
                 gaze: float) -> None:
    """Draws the face, back to front, onto ``img`` ``[3, T, H, W]``; ``lit`` None turns shading off."""
    f = face
    A = {unit: _per_frame(au[:, i]) for i, unit in enumerate(ACTION_UNITS)}  # intensities 0..5, each (T, 1, 1)
    skin, hair = f.skin.astype(np.float32), f.hair.astype(np.float32)
    c = _Canvas(img, face, pose, slice(None), slice(None), lit)
    xh, y, px = c.xh, c.y, c.px

    # 1. Hair behind the head, neck, ears, head (the jaw lengthens with AU26).
    if HAIR_STYLES[f.hair_style] == "long":
        c.paint(c.cover(_ellipse(xh, y - 0.15, f.head_w * 1.25, f.head_h * 1.12)), hair)
    if HAIR_STYLES[f.hair_style] == "bun":
        c.paint(c.cover(np.hypot(xh, y + f.head_h * 1.02) - 0.2), hair)
    c.paint(c.cover(_segment(xh, y, 0.0, f.head_h * 0.6, 0.0, 1.6) - f.head_w * 0.42), skin * 0.8)
    c.paint(c.cover(_ellipse(np.abs(xh) - f.head_w * 0.97, y - f.eye_y - 0.06, 0.07, 0.12)), skin * 0.9)
    rx = f.head_w * (1.0 - f.jaw * np.clip(y / f.head_h, 0.0, 1.0) ** 2)
    ry = np.where(y > 0, f.head_h * (1.0 + 0.03 * A[26]), f.head_h)
    c.paint(c.cover(_ellipse(xh, y, rx, ry)), c.shade(skin))

    # 2. Hair on top: inside a slightly larger skull, above a hairline whose shape is the identity's style.
    style = HAIR_STYLES[f.hair_style]
    if style != "bald":
        top = {"short": -0.45, "fringe": -0.32, "long": -0.5, "bun": -0.55}[style] * f.head_h
        hairline = top + 0.35 * f.head_h * (xh / f.head_w) ** 4
        if style == "fringe":
            hairline = hairline + 0.025 * np.sin(xh * 45.0)
        cap = c.cover(_ellipse(xh, y + 0.02, f.head_w * 1.07, f.head_h * 1.06))
        c.paint(cap * np.clip(0.5 + (hairline - y) / px, 0.0, 1.0), hair)

    _feature_layers(_Canvas(img, face, pose, *_feature_window(pose, img.shape[2]), lit), face, A, gaze)


def _feature_layers(c: _Canvas, face: Face, A: dict[int, np.ndarray], gaze: float) -> None:
    """Draws wrinkles, eyes, brows, nose, mouth and chin, each moved by the AUs ``A`` (unit -> ``[T, 1, 1]``)."""
    f = face
    ax, y, xf, px = c.ax, c.y, c.xf, c.px
    skin, hair = f.skin.astype(np.float32), f.hair.astype(np.float32)

    # 3. Cheeks (AU6 raises them; a soft blush where they bulge) and the mouth geometry the folds attach to.
    blush = c.cover(_ellipse(ax - f.eye_dx - 0.02, y - f.eye_y - 0.17 + 0.012 * A[6], 0.09, 0.06), blur=4.0)
    c.paint(blush * np.clip(0.06 * A[6], 0, 1), c.shade(skin * np.array([0.95, 0.7, 0.65])))
    w = f.mouth_w * (1.0 + 0.06 * A[12] + 0.08 * A[20] - 0.025 * A[17])  # lip corners pulled out
    corner_y = f.mouth_y - 0.024 * A[12] + 0.024 * A[15] + 0.006 * A[17] + 0.004 * A[20]
    mid_y = f.mouth_y + 0.012 * A[26]
    fold = np.clip((0.6 * A[12] + 0.6 * A[9] + 0.3 * A[6] + 0.3 * A[20]) / 5.0, 0.0, 1.0)
    d = _segment(ax, y, f.nose_w * 1.25, f.nose_y - 0.01, w + 0.04, corner_y + 0.005)
    c.pen(c.stroke(d) * 0.7 * fold)

    # 4. Forehead lines: AU1 creases the middle of the forehead, AU2 its sides; AU4 the vertical glabella lines.
    brow_y = f.eye_y - f.brow_gap
    middle, side = np.clip(1.0 - ax / 0.2, 0.0, 1.0), np.clip(1.0 - np.abs(ax - 0.22) / 0.14, 0.0, 1.0)
    crease = np.clip((A[1] * middle + A[2] * side) / 4.0, 0.0, 1.0) * 0.8
    for k in range(3):
        c.pen(c.stroke(np.abs(y - (brow_y - 0.09 - 0.055 * k + 0.12 * ax * ax)), 0.3) * crease)
    d = _segment(ax, y, 0.035, brow_y + 0.02, 0.03, brow_y - 0.07)
    c.pen(c.stroke(d, 0.3) * np.clip(A[4] / 4.0, 0.0, 1.0) * 0.8)

    # 5. Nose: side line, base, nostrils (raised and flared by AU9) and AU9's wrinkles across the bridge.
    lift = 0.008 * A[9]
    c.pen(c.stroke(_segment(ax, y, f.nose_w * 0.45, f.eye_y + 0.06, f.nose_w * 0.65, f.nose_y - 0.04), 0.3) * 0.3)
    c.pen(c.stroke(_segment(ax, y, f.nose_w, f.nose_y - 0.015 - lift, 0.0, f.nose_y + 0.02 - lift)) * 0.5)
    nostril = _ellipse(ax - f.nose_w * 0.5, y - f.nose_y + lift, 0.02 * (1 + 0.08 * A[9]), 0.011)
    c.pen(c.cover(nostril) * 0.75)
    wrinkle = np.clip(A[9] / 4.0, 0.0, 1.0) * (ax < f.nose_w * 0.9)
    for k in range(3):
        c.pen(c.stroke(np.abs(y - (f.eye_y + 0.05 + 0.03 * k - 0.2 * ax * ax)), 0.3) * wrinkle)

    # Crow's feet at the outer eye corners with AU6.
    feet = np.clip(A[6] / 4.0, 0.0, 1.0) * 0.8
    for k in (-1, 0, 1):
        d = _segment(ax, y, f.eye_dx + f.eye_w + 0.015, f.eye_y + 0.02 * k, f.eye_dx + f.eye_w + 0.06,
                     f.eye_y + 0.04 * k)
        c.pen(c.stroke(d, 0.3) * feet)
    c.flush()

    # 6. Eyes: AU5 opens the upper lid (white shows above the iris), AU6 pushes the lower lid up (a squint),
    # AU4 and AU9 narrow them from above.
    ex, ey = ax - f.eye_dx, y - f.eye_y
    up = f.eye_h * (1.0 + 0.16 * A[5] - 0.05 * A[4] - 0.03 * A[6] - 0.06 * A[9])
    down = f.eye_h * (1.0 - 0.11 * A[6] - 0.02 * A[9])
    d_eye = _ellipse(ex, ey, f.eye_w, np.where(ey < 0, up, down))
    eye = c.cover(d_eye)
    c.paint(eye, [0.95, 0.93, 0.90])
    d_iris = np.hypot(np.sign(xf) * ex - gaze * f.eye_w, ey)  # both eyes look the same way
    c.paint(eye * c.cover(d_iris - f.eye_h * 1.05), f.iris)
    c.paint(eye * c.cover(d_iris - f.eye_h * 0.45), [0.03, 0.03, 0.03])
    c.pen(c.stroke(np.abs(d_eye), 0.4) * (ey < 0.3 * f.eye_h))  # upper lid and lashes
    c.pen(c.stroke(np.abs(d_eye), 0.25) * (ey >= 0.3 * f.eye_h) * 0.5)
    c.flush()

    # 7. Brows as two thick segments: AU1 lifts the inner end, AU2 the outer, AU4 pulls them down and together;
    # AU9 lowers them too (its muscle, the procerus, pulls the brows' inner ends down), so disgust resembles anger.
    inner_x = f.eye_dx - f.brow_len * 0.5 - 0.012 * A[4] - 0.004 * A[9]
    inner_y = brow_y - 0.028 * A[1] + 0.02 * A[4] + 0.014 * A[9]
    mid_by = brow_y - f.brow_arch - 0.012 * A[1] - 0.018 * A[2] + 0.011 * A[4] + 0.006 * A[9]
    outer_y = brow_y + 0.01 - 0.028 * A[2] + 0.004 * A[4]
    outer_x = f.eye_dx + f.brow_len * 0.55
    d = np.minimum(_segment(ax, y, inner_x, inner_y, f.eye_dx, mid_by),
                   _segment(ax, y, f.eye_dx, mid_by, outer_x, outer_y))
    c.paint(c.cover(d - f.brow_thick), hair * 0.7)

    # 8. Mouth: lips between curves through the corners. AU12/15 move the corners up/down, AU20 stretches and
    # thins the lips, AU25 parts them, AU26 drops the jaw, AU17 pushes the lower lip up, AU9 lifts the upper.
    u2 = (ax / w) ** 2
    span = np.sqrt(np.clip(1.0 - u2, 0.0, 1.0))  # lip thickness tapers to 0 at the corners
    inside = np.clip(0.5 + (w - ax) / px, 0.0, 1.0)
    centre = mid_y + (corner_y - mid_y) * u2
    gap = np.maximum(0.009 * A[25] + 0.016 * A[26] - 0.01 * A[17], 0.0)
    upper_in = centre - (gap / 2 + 0.005 * A[9]) * span
    lower_in = centre + (gap / 2) * span
    upper_out = upper_in - f.lip_up * (1.0 - 0.06 * A[20] - 0.03 * A[12]) * span
    lower_out = lower_in + f.lip_lo * (1.0 - 0.06 * A[20] - 0.03 * A[12] + 0.08 * A[17]) * span
    lip = np.array([0.85, 0.55, 0.55], np.float32) * skin
    c.paint(_band(y, upper_out, lower_out, px) * inside, c.shade(lip))
    opening = _band(y, upper_in, lower_in, px) * inside
    c.paint(opening, [0.25, 0.07, 0.07])
    c.paint(opening * _band(y, upper_in, upper_in + np.minimum(gap * 0.35, 0.025), px), [0.93, 0.92, 0.88])
    c.pen(c.stroke(np.abs(y - centre), 0.3) * inside * 0.8)  # the line between the lips

    # 9. Chin: AU17 raises the chin boss, deepening the crease below the lower lip.
    chin_y = f.mouth_y + f.lip_lo + 0.06 + 0.025 * A[26] - 0.006 * A[17] + 1.5 * ax * ax
    boss = (0.15 + np.clip(A[17] / 4.0, 0.0, 1.0) * 0.7) * (ax < 0.08)
    c.pen(c.stroke(np.abs(y - chin_y), 0.3) * boss)
    c.flush()


def _hue_matrix(angle: float, saturation: float) -> np.ndarray:
    """RGB matrix rotating hue by ``angle`` about the grey axis and scaling saturation (Rodrigues' formula)."""
    k = np.ones(3) / np.sqrt(3.0)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * K @ K
    grey = np.outer(k, k)
    return (grey + saturation * (rotation - grey)).astype(np.float32)


def _blob(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, spread: float) -> np.ndarray:
    """Signed distance to a random disc, box or striped disc centred within ``spread`` of the origin."""
    cx, cy, r = rng.uniform(-spread, spread), rng.uniform(-spread, spread), rng.uniform(0.1, 0.45)
    kind = rng.integers(3)
    if kind == 0:
        return np.hypot(x - cx, y - cy) - r
    if kind == 1:
        return np.maximum(np.abs(x - cx) - r, np.abs(y - cy) - r * rng.uniform(0.3, 1.5))
    theta, freq = rng.uniform(0, np.pi), rng.uniform(8, 25)
    stripes = np.abs(np.sin(((x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)) * freq)) - 0.4
    return np.maximum(stripes / freq, np.hypot(x - cx, y - cy) - r * 1.5)


def _clutter(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """A background of random coloured discs, boxes and striped discs, ``[3, 1, H, W]``."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    x, y = grid[None, None, :], grid[None, :, None]
    img = np.empty((3, 1, size, size), np.float32)
    img[:] = rng.uniform(0.2, 0.9, 3).astype(np.float32).reshape(3, 1, 1, 1)
    px = np.float32(2.0 / size)
    for _ in range(count):
        _paint(img, _cover(_blob(rng, x, y, 1.1), px), rng.uniform(0.0, 1.0, 3))
    return img


def _occluder(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coverage ``[1, H, W]`` of an object held in front of part of the face."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    return _cover(_blob(rng, grid[None, None, :], grid[None, :, None], 0.6), np.float32(2.0 / size))


def render_clip(face: Face, au: np.ndarray, pose: Pose, style: str, image_size: int,
                rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    """Renders one clip.

    Args:
        face: the identity.
        au: ``[T, 12]`` AU intensities 0..5 per frame, in ``ACTION_UNITS`` order.
        pose: the head pose per frame.
        style: one of ``RENDER_STYLES``.
        image_size: height and width in pixels.
        rng: the clip's random generator (lighting, background, noise).
        noise: standard deviation of the pixel noise added in every style (low light adds its own).

    Returns:
        ``[T, H, W, 3]`` uint8 RGB frames.
    """
    T, S = au.shape[0], image_size
    light = rng.normal(0.0, 1.0, 3) * [1.0, 1.0, 0.3] + [0.0, -0.6, 1.2]
    light = (light / np.linalg.norm(light)).astype(np.float32)
    gaze = float(rng.uniform(-0.3, 0.3))
    rgb = lambda values: np.asarray(values, np.float32).reshape(3, 1, 1, 1)  # noqa: E731
    if style == "line":
        img = np.ones((3, T, S, S), np.float32)
        _face_layers(img, face, au, pose, lit=None, gaze=gaze)
        # Edges of the flat rendering become the pen strokes on paper.
        lum = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]  # (T, H, W)
        edge = np.zeros_like(lum)
        edge[:, :, 1:] = np.abs(np.diff(lum, axis=2))
        edge[:, 1:, :] = np.maximum(edge[:, 1:, :], np.abs(np.diff(lum, axis=1)))
        ink = np.clip(edge * 3.0, 0.0, 1.0)
        img = rgb(rng.uniform(0.88, 1.0, 3)) * (1.0 - ink) + ink * rgb(rng.uniform(0.0, 0.25, 3))
    else:
        img = np.empty((3, T, S, S), np.float32)
        if style == "clutter":
            img[:] = _clutter(rng, S, int(rng.integers(8, 20)))
        else:  # a soft vertical gradient between two muted colours
            top, bottom = rng.uniform(0.3, 0.85, (2, 3))
            img[:] = rgb(top) + np.linspace(0.0, 1.0, S, dtype=np.float32)[:, None] * rgb(bottom - top)
        _face_layers(img, face, au, pose, lit=light, gaze=gaze)
        if style == "clutter" and rng.random() < 0.5:  # an object in front of part of the face
            _paint(img, _occluder(rng, S), rng.uniform(0.0, 1.0, 3))
        elif style == "lowlight":  # dark, with sensor noise that grows with the signal
            img *= rng.uniform(0.2, 0.45)
            sigma = rng.uniform(0.03, 0.06)
            img += rng.standard_normal(img.shape, dtype=np.float32) * sigma * (0.5 + np.sqrt(img))
        elif style == "colourshift":
            matrix = _hue_matrix(rng.uniform(0.6, 2 * np.pi - 0.6), rng.uniform(0.3, 1.8))
            gains = rng.uniform(0.6, 1.3, 3).astype(np.float32)
            img = np.tensordot(matrix * gains[:, None], img, axes=1) + rgb(rng.uniform(-0.1, 0.1, 3))
    if noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    img = np.clip(img, 0.0, 1.0) * 255.0 + 0.5
    return np.ascontiguousarray(img.transpose(1, 2, 3, 0)).astype(np.uint8)  # (T, H, W, 3)
