"""Synthetic video source for bots and tests: moving stripes, a bouncing box and a frame counter.

Frames are yuv420p ``av.VideoFrame`` objects whose planes are filled from bytes,
so nothing beyond PyAV is needed (no numpy). Rendering is row-based (slices and
``bytes.join``), which keeps a 320x240 frame well under a millisecond of work.
"""

from __future__ import annotations

import asyncio
import fractions

from aiortc import VideoStreamTrack
from aiortc.mediastreams import VIDEO_CLOCK_RATE, MediaStreamError
from av import VideoFrame

__all__ = ["SyntheticVideoTrack", "render_frame"]

VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

# 3x5 bitmap font for the frame counter, one string per row, "#" = lit.
_DIGITS: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
}
_STRIPE_PERIOD = 64  # pixels per luma ramp; rows are shifted copies of one ramp
_BOX_SIZE_DIVISOR = 6  # bouncing box side = min(width, height) // this


def _luma_rows(width: int) -> list[bytes]:
    """All ``_STRIPE_PERIOD`` horizontal shifts of a luma ramp, each ``width`` bytes long."""
    ramp = bytes(16 + (i * 219) // (_STRIPE_PERIOD - 1) for i in range(_STRIPE_PERIOD))
    repeated = ramp * (width // _STRIPE_PERIOD + 2)
    return [repeated[shift : shift + width] for shift in range(_STRIPE_PERIOD)]


def _bounce(position: int, span: int) -> int:
    """Triangle wave: map an ever-growing ``position`` onto 0..span and back."""
    if span <= 0:
        return 0
    position %= 2 * span
    return position if position <= span else 2 * span - position


def _draw_rect(plane: bytearray, stride: int, x: int, y: int, w: int, h: int, value: int) -> None:
    """Fill a rectangle in a single plane (caller keeps it inside the plane)."""
    fill = bytes([value]) * w
    for row in range(y, y + h):
        start = row * stride + x
        plane[start : start + w] = fill


def render_frame(
    index: int, width: int, height: int, *, _rows: list[bytes] | None = None
) -> VideoFrame:
    """Render synthetic frame number ``index`` (no timestamps set).

    Diagonal stripes scroll by two pixels per frame, a white box bounces around,
    the chroma tint cycles, and the frame number is drawn in the top-left corner,
    so consecutive frames always differ and a viewer can spot stalls.
    """
    frame = VideoFrame(width=width, height=height, format="yuv420p")
    y_plane, u_plane, v_plane = frame.planes
    rows = _rows if _rows is not None else _luma_rows(width)

    # Luma: each output row is a shifted ramp; shifting by row index too makes the
    # stripes diagonal, shifting by frame index makes them move.
    stride = y_plane.line_size
    padding = bytes(stride - width)
    luma = bytearray(
        b"".join(rows[(2 * index + row) % _STRIPE_PERIOD] + padding for row in range(height))
    )

    box = max(2, min(width, height) // _BOX_SIZE_DIVISOR)
    box_x = _bounce(3 * index, width - box)
    box_y = _bounce(2 * index, height - box)
    _draw_rect(luma, stride, box_x, box_y, box, box, 235)

    # Frame counter on a black plate, 3x5 font scaled so it stays legible.
    scale = max(1, height // 60)
    text = str(index)
    glyph_w, gap = 3 * scale, scale
    plate_w = min(width, len(text) * (glyph_w + gap) + gap)
    plate_h = min(height, 5 * scale + 2 * gap)
    _draw_rect(luma, stride, 0, 0, plate_w, plate_h, 16)
    for n, char in enumerate(text):
        x0 = gap + n * (glyph_w + gap)
        if x0 + glyph_w > plate_w:
            break  # too many digits for a tiny frame: truncate rather than overflow
        for gy, pattern in enumerate(_DIGITS[char]):
            for gx, cell in enumerate(pattern):
                if cell == "#":
                    _draw_rect(luma, stride, x0 + gx * scale, gap + gy * scale, scale, scale, 235)
    y_plane.update(bytes(luma))

    # Chroma: a flat tint drifting around the colour wheel.
    u_value = 128 + _bounce(index, 80) - 40
    v_value = 128 + _bounce(index + 40, 80) - 40
    for plane, value in ((u_plane, u_value), (v_plane, v_value)):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


class SyntheticVideoTrack(VideoStreamTrack):
    """A live video track yielding :func:`render_frame` frames at a fixed rate."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            # yuv420p subsamples chroma 2x2; odd sizes trip up some encoders.
            raise ValueError(f"width and height must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_produced = 0
        """Frames handed to the consumer (the RTP sender) so far."""
        self._rows = _luma_rows(width)
        self._epoch: float | None = None

    async def recv(self) -> VideoFrame:
        """Wait until the next frame is due, then return it; raises MediaStreamError once stopped."""
        if self.readyState != "live":
            raise MediaStreamError
        index = self.frames_produced
        loop = asyncio.get_running_loop()
        if self._epoch is None:
            self._epoch = loop.time()
        else:
            # Pace against a fixed epoch (not the previous frame) so timing errors don't accumulate.
            delay = self._epoch + index / self.fps - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.readyState != "live":
                raise MediaStreamError
        frame = render_frame(index, self.width, self.height, _rows=self._rows)
        frame.pts = index * VIDEO_CLOCK_RATE // self.fps
        frame.time_base = VIDEO_TIME_BASE
        self.frames_produced += 1
        return frame
