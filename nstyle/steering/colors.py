"""Colour control: keep the content's colours while taking the style's texture.

Gatys, Bethge, Hertzmann & Shechtman, "Preserving color in neural artistic style
transfer" (arXiv 1606.05897) give two ways, both here as pure functions on RGB tensors
(N, 3, *spatial) in [0, 1] (images are (N, 3, H, W); nothing below depends on the number
of spatial axes):

``keep-luminance``
    Transfer between luminance channels only. C and S become grey images Y(C) and Y(S)
    (Y replicated to 3 channels, so the network sees a grey picture), S's luminance first
    given C's mean and standard deviation; G is optimised as a grey image; the result
    is G's Y with C's chrominance (I, Q of YIQ), back to RGB.
``match-histogram``
    Recolour S so that its colours have C's mean and covariance (a linear map of RGB,
    ``match_colors``), then transfer as usual and return G as it is.

``prepare`` and ``finish`` are the two calls a pipeline makes around its optimisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch

from ..core.multiscale import resize
from ..errors import NStyleError

COLOR_MODES = ("keep-luminance", "match-histogram")

# RGB -> YIQ, the FCC's NTSC definition (47 CFR 73.682; the 6-digit form listed e.g. in
# Wikipedia's "YIQ"). Y weighs R, G, B by the eye's sensitivity (0.299 + 0.587 + 0.114
# = 1, so a grey pixel's Y is its value); I and Q are B−Y and R−Y scaled to the NTSC
# signal range and rotated by 33°, and each of their rows sums to 0 exactly, so a grey
# pixel has no chrominance. Gatys et al. use YIQ; the inverse is computed, not rounded
# from a table, so yiq_to_rgb(rgb_to_yiq(x)) == x to float64 precision.
RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)

# Floor on the eigenvalues of S's colour covariance in ``match_colors`` (variance in
# [0, 1]² units). Σ_S^-½ divides by √λ: a direction in which S hardly varies (a grey or
# two-colour style has rank < 3) would otherwise have its quantisation noise blown up
# to C's spread. 1e-5 is a standard deviation of 0.0032, just under one 8-bit level
# (1/255 = 0.0039); the sample photos' smallest eigenvalues are 3e-5 (ihc, hubble) to
# 2e-3 (astronaut) at 64 px, so for them the map is exact.
DEFAULT_EPS = 1e-5


def check_color_mode(mode: str | None) -> str | None:
    """``mode`` if it is None or one of ``COLOR_MODES``; otherwise an NStyleError."""
    if mode is None or mode in COLOR_MODES:
        return mode
    raise NStyleError(f"colors: unknown mode {mode!r}; choose {' or '.join(COLOR_MODES)} (or none)")


def _check_rgb(x: torch.Tensor, what: str) -> None:
    if x.dim() < 3 or x.shape[1] != 3:
        raise NStyleError(
            f"colors: the {what} must be RGB, shaped (N, 3, *spatial); got shape {tuple(x.shape)}"
        )


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3 x 3 colour matrix to every sample: y_{n,i,p} = Σ_j matrix_ij · x_{n,j,p}."""
    dt = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64
    return torch.einsum("ij,nj...->ni...", matrix.to(device=x.device, dtype=dt), x.to(dt))


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """(Y, I, Q) = RGB_TO_YIQ · (R, G, B) at every sample of (N, 3, *spatial). Not clamped."""
    _check_rgb(x, "image")
    return _mix(RGB_TO_YIQ, x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(R, G, B) = RGB_TO_YIQ⁻¹ · (Y, I, Q): the exact inverse of ``rgb_to_yiq``. Not clamped."""
    _check_rgb(x, "YIQ image")
    return _mix(YIQ_TO_RGB, x)


def luminance_rgb(x: torch.Tensor) -> torch.Tensor:
    """Y = 0.299 R + 0.587 G + 0.114 B replicated to 3 channels: the grey image the
    network sees in luminance-only transfer. In [0, 1] for x in [0, 1] (convex weights);
    a grey image (R = G = B) is returned unchanged."""
    y = rgb_to_yiq(x)[:, :1]
    return y.expand(-1, 3, *y.shape[2:]).contiguous()


def with_chrominance(g: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """G's luminance with C's chrominance: RGB from (Y(G), I(C), Q(C)), clamped to [0, 1].

    ``content`` may have another spatial size than ``g`` (it may also hold one image for
    a batch of G's): its I and Q are then resized to G's grid (bicubic in 2D, linear
    otherwise) — the chrominance is smooth, so this costs little. Where G's Y and C's
    chrominance together fall outside the RGB cube the result is clamped.
    """
    _check_rgb(content, "content image")
    y = rgb_to_yiq(g)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    if iq.shape[2:] != y.shape[2:]:
        iq = resize(iq, y.shape[2:])
    iq = iq.to(y.dtype).expand(y.shape[0], -1, *y.shape[2:])
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of (N, 3, *spatial): the mean colour μ (N, 3, 1) and the covariance
    Σ = 1/M · Σ_p (x_p − μ)(x_p − μ)ᵀ (N, 3, 3) over its M samples, Σ in float64."""
    flat = x.flatten(2)
    mu = flat.mean(dim=2, keepdim=True)
    centred = flat - mu
    cov = (centred @ centred.transpose(1, 2)).double() / flat.shape[2]
    return mu, cov


def _sym_power(cov: torch.Tensor, power: float, floor: float) -> torch.Tensor:
    """Σ^power for symmetric Σ (batched), eigenvalues first raised to at least ``floor``."""
    lam, vec = torch.linalg.eigh(cov)
    lam = lam.clamp_min(floor).pow(power)
    return (vec * lam.unsqueeze(-2)) @ vec.transpose(-1, -2)


def match_colors(style: torch.Tensor, content: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """S recoloured to C's colour statistics: x' = A (x − μ_S) + μ_C at every sample,
    clamped to [0, 1].

    μ and Σ are each image's mean colour and colour covariance over all its samples (Σ
    divided by M, the sample count); A = Σ_C^½ Σ_S^-½ with symmetric matrix square
    roots, so that A Σ_S Aᵀ = Σ_C: before clamping, S' has exactly C's mean and
    covariance (exactly as long as Σ_S's eigenvalues are >= ``eps``; smaller ones are
    raised to ``eps``, see ``DEFAULT_EPS``).

    Of the solutions of A Σ_S Aᵀ = Σ_C that Gatys et al. give, this is their "image
    analogies" one rather than the Cholesky one (A = L_C L_S⁻¹): a Cholesky factor
    depends on the order of the channels — listing them as B, G, R gives another A and
    another picture — while the symmetric roots do not (they turn with any rotation or
    permutation of the colour axes), and they are defined for singular Σ (a grey image),
    where Cholesky fails.

    ``content`` holds one image, or one per style image; S and C may differ in size.
    """
    _check_rgb(style, "style image")
    _check_rgb(content, "content image")
    if content.shape[0] not in (1, style.shape[0]):
        raise NStyleError(
            f"colors: {content.shape[0]} content images for {style.shape[0]} style images (give 1 or the same number)"
        )
    dt = torch.promote_types(style.dtype, torch.float32)
    mu_s, cov_s = _stats(style.to(dt))
    mu_c, cov_c = _stats(content.to(dt))
    a = _sym_power(cov_c, 0.5, 0.0) @ _sym_power(cov_s, -0.5, eps)  # (N, 3, 3), float64
    flat = style.to(dt).flatten(2)
    out = a.to(dt) @ (flat - mu_s) + mu_c.to(dt)
    return out.reshape(style.shape).clamp(0, 1)


def match_luminance(y_style: torch.Tensor, y_content: torch.Tensor) -> torch.Tensor:
    """Y(S)' = σ_C/σ_S · (Y(S) − μ_S) + μ_C, clamped to [0, 1]: S's luminance given C's
    mean μ and standard deviation σ (each over one image's samples), as Gatys et al. do
    before luminance-only transfer so that S's texture is rendered in C's tonal range.
    A flat S (σ_S = 0) becomes C's mean."""
    dims = tuple(range(1, y_style.dim()))
    mu_s, sd_s = y_style.mean(dims, keepdim=True), y_style.std(dims, unbiased=False, keepdim=True)
    mu_c, sd_c = y_content.mean(dims, keepdim=True), y_content.std(dims, unbiased=False, keepdim=True)
    # A flat style has no spread to stretch: where σ_S is 0 the ratio is taken as 0.
    gain = torch.where(sd_s > 0, sd_c / sd_s.clamp_min(torch.finfo(sd_s.dtype).tiny), torch.zeros_like(sd_s))
    return (gain * (y_style - mu_s) + mu_c).clamp(0, 1)


@overload
def prepare(
    mode: str | None, content: torch.Tensor, styles: torch.Tensor, *, luminance_stats: bool = True
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def prepare(
    mode: str | None, content: torch.Tensor, styles: Sequence[torch.Tensor], *, luminance_stats: bool = True
) -> tuple[torch.Tensor, list[torch.Tensor]]: ...
def prepare(
    mode: str | None,
    content: torch.Tensor,
    styles: torch.Tensor | Sequence[torch.Tensor],
    *,
    luminance_stats: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | list[torch.Tensor]]:
    """The content and style images the network should see for colour mode ``mode``.

    ``styles`` is one style tensor or a sequence of them; they come back in the same
    form. None: both unchanged. ``keep-luminance``: C → Y(C) and S → Y(S) as grey RGB
    images (``luminance_rgb``), S's luminance first given C's mean and standard deviation
    when ``luminance_stats`` (``match_luminance``). ``match-histogram``: C unchanged, each
    S recoloured to C's mean colour and covariance (``match_colors``). Call before
    resizing to the scales of a coarse-to-fine run, and ``finish`` on the result.
    """
    mode = check_color_mode(mode)
    single = isinstance(styles, torch.Tensor)
    style_list = [styles] if single else list(styles)
    _check_rgb(content, "content image")
    for s in style_list:
        _check_rgb(s, "style image")
    if mode == "keep-luminance":
        y_c = luminance_rgb(content).to(content.dtype)
        ys = [luminance_rgb(s).to(s.dtype) for s in style_list]
        if luminance_stats:
            # Y(C)'s three channels are equal, so matching them all matches the one Y.
            ys = [match_luminance(y, y_c) for y in ys]
        content, style_list = y_c, ys
    elif mode == "match-histogram":
        style_list = [match_colors(s, content).to(s.dtype) for s in style_list]
    return content, (style_list[0] if single else style_list)


def finish(mode: str | None, g: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The RGB result from the optimised G for colour mode ``mode``.

    ``keep-luminance``: G's luminance with the (original, colour) content's chrominance
    (``with_chrominance``; G may be smaller or larger than C). Otherwise G unchanged.
    """
    mode = check_color_mode(mode)
    if mode == "keep-luminance":
        return with_chrominance(g, content).to(g.dtype)
    return g
