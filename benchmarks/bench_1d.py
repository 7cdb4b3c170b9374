"""Seconds per optimisation step and peak memory: nstyle's 1D paths against a plain loop.

Three cases, each with nstyle's defaults:

* **audio, waveform mode** and **audio, magnitude mode**: 10 s at 22.05 kHz, mono.
  Content: /usr/share/sounds/alsa/Front_Center.wav, style: /usr/share/sounds/alsa/Noise.wav,
  each resampled with ``load_audio`` and looped to 10 s (if either is missing, both are
  synthesised with numpy instead, a 110 -> 3520 Hz chirp and seeded white noise, and the
  header says so). Branches ``11:4096,11x4:1024`` (seed 0) over log(1 + |STFT|), n_fft
  1024, hop 256 (862 frames x 513 bins); content layer relu_w11, style layers relu_w11 and
  relu_w11d4 (λ = 1), α = 1 / (elements of the content layer), β = 1e3; init noise (seed 0).
  Waveform mode optimises the samples through the STFT (``RandomBranches`` with
  ``preprocess=log_magnitude``); magnitude mode optimises the log-magnitude itself (the
  net sees its absolute value). Griffin-Lim (64 iterations, from the content's phase),
  which magnitude mode runs once after the last step, is timed separately, once per run.
* **ECG series**: pydicom's bundled ``waveform_ecg.dcm`` (12 leads x 10000 samples),
  each lead standardised; style is the same recording reversed in time (pydicom bundles
  one ECG; the Grams' values, not the cost, depend on the choice). Branches from
  ``series_branches(estimate_period(...))`` (5-tap, 256 filters, dilations 1, 4, 16, 64),
  α as above, β = 10, init noise (seed 0).

For each case this times

* **nstyle**: the objects ``stylize_audio`` / ``stylize_series`` build (the network, a
  ``StyleObjective`` and ``optimize(..., optimizer="lbfgs")``), built here rather than
  through those functions so that file loading and Griffin-Lim stay out of the timing.
  The content activations and style Grams are computed once, before the first step.
* **reference**: a plain loop written here, under ``torch.optim.LBFGS(max_iter=1)`` with
  nstyle's settings (lr 1, history 50, no tolerances), with the same network weights and
  the same costs, written out below. It is the naive way: every closure call recomputes
  the STFT features of G, C and S (audio), the content branch's activations of C, and every
  style branch's activations and Gram of S, as well as G's.

Each configuration runs in a fresh subprocess (this script with a hidden flag), with
``--warmup`` untimed steps and then ``--steps`` timed ones; s/step is the median of the
timed steps (the mean is printed in the log too). With ``--repeats R`` each configuration
runs R times, nstyle and reference alternating which goes first, and the table keeps the
fastest s/step and lowest peak of each. Peak memory is the extra memory a run needs above
what is held just before it (network, signals, interpreter), measured as in
bench_image.py: on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs
after a malloc_trim) minus the resident set at that moment; on CUDA
``torch.cuda.max_memory_allocated`` minus the memory allocated then. J at the first step
is printed for both and compared, as a check that both compute the same objective.

    python benchmarks/bench_1d.py                          # all three cases, 2 + 5 steps
    python benchmarks/bench_1d.py --cases series --steps 2 # quick check
    python benchmarks/bench_1d.py --device cuda --repeats 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_image import (  # shared pieces
    MemoryProbe,
    _sync,
    add_run_options,
    checked_device,
    header,
)

RATE = 22050
SECONDS = 10.0
N_FFT, HOP = 1024, 256
CONTENT_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
STYLE_WAV = Path("/usr/share/sounds/alsa/Noise.wav")
ECG_FILE = "waveform_ecg.dcm"
GRIFFIN_LIM_ITERS = 64
SEED = 0
LBFGS_ARGS = {"lr": 1.0, "max_iter": 1, "history_size": 50, "tolerance_grad": 0.0, "tolerance_change": 0.0}
CASES = {"waveform": "audio waveform, 10 s", "magnitude": "audio magnitude, 10 s", "series": "ECG 12 x 10000"}
IMPLS = ("nstyle", "reference")


# ----------------------------------------------------------------------------- inputs


def synthetic_audio(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content: a 0.5-amplitude log chirp 110 -> 3520 Hz over the clip; style: white noise."""
    t = np.arange(n) / RATE
    f0, f1, dur = 110.0, 3520.0, n / RATE
    k = f1 / f0
    chirp = 0.5 * np.sin(2 * np.pi * f0 * dur / np.log(k) * (k ** (t / dur) - 1.0))
    noise = np.clip(0.2 * np.random.default_rng(SEED).standard_normal(n), -1, 1)
    as_t = lambda a: torch.from_numpy(a.astype(np.float32))[None, None]
    return as_t(chirp), as_t(noise)


def audio_pair() -> tuple[torch.Tensor, torch.Tensor, str]:
    """(1, 1, 10 s) content and style at RATE, and where they came from."""
    from nstyle.modalities.audio import load_audio

    n = round(SECONDS * RATE)
    if not (CONTENT_WAV.is_file() and STYLE_WAV.is_file()):
        c, s = synthetic_audio(n)
        return c, s, "SYNTHESISED (ALSA sample WAVs missing): content 110->3520 Hz chirp, style white noise"

    def looped(path: Path) -> torch.Tensor:
        x = load_audio(path, rate=RATE, mono=True).tensor
        return x.repeat(1, 1, math.ceil(n / x.shape[-1]))[..., :n].contiguous()

    return looped(CONTENT_WAV), looped(STYLE_WAV), f"content {CONTENT_WAV.name}, style {STYLE_WAV.name}, looped"


def ecg_raw() -> torch.Tensor:
    from pydicom.data import get_testdata_file

    from nstyle.modalities.series import load_series

    return load_series(get_testdata_file(ECG_FILE)).tensor  # (1, 12, 10000), the file's units


@dataclass
class Case:
    """Everything both loops share: the network, the signals and the weights."""

    net: torch.nn.Module  # nstyle.nets.random.RandomBranches
    c_raw: torch.Tensor  # content as loaded (waveform / standardised series)
    s_raw: torch.Tensor
    c_in: torch.Tensor  # what StyleObjective gets as C and S (log-magnitude in magnitude mode)
    s_in: torch.Tensor
    g0: torch.Tensor
    content_layer: str
    layers: dict[str, float]
    alpha: float
    beta: float
    info: str


def build_case(name: str, device: torch.device) -> Case:
    """The objects stylize_audio / stylize_series build, with their defaults."""
    from nstyle.modalities.audio import log_magnitude
    from nstyle.nets.random import RandomBranches, parse_branches
    from nstyle.signals import (
        AUDIO_STYLE_WEIGHT,
        DEFAULT_AUDIO_BRANCHES,
        SERIES_STYLE_WEIGHT,
        _noise_like,
        _stats,
        _weights,
        estimate_period,
        series_branches,
    )

    if name in ("waveform", "magnitude"):
        c, s, source = audio_pair()
        c, s = c.to(device), s.to(device)
        n_bins = N_FFT // 2 + 1
        if name == "waveform":
            spectrum, c_in, s_in = (lambda x: log_magnitude(x, N_FFT, HOP)), c, s
        else:
            spectrum, c_in, s_in = torch.abs, log_magnitude(c, N_FFT, HOP), log_magnitude(s, N_FFT, HOP)
        branches = parse_branches(DEFAULT_AUDIO_BRANCHES)
        net = RandomBranches(n_bins, branches, dims=1, seed=0, preprocess=spectrum).to(device)
        g0 = _noise_like(c, SEED) if name == "waveform" else _noise_like(c_in, SEED).abs()
        beta = AUDIO_STYLE_WEIGHT
        frames = 1 + c.shape[-1] // HOP
        info = (f"{source}; {c.shape[-1]} samples at {RATE} Hz, {frames} frames x {n_bins} bins; "
                f"branches {DEFAULT_AUDIO_BRANCHES}")
    elif name == "series":
        raw = ecg_raw()
        mean, std = _stats(raw)
        c = ((raw - mean) / std).to(device)
        s = c.flip(-1).contiguous()
        period = estimate_period(raw)
        branches = series_branches(min(period, c.shape[-1]))
        net = RandomBranches(c.shape[1], branches, dims=1, seed=0).to(device)
        c_in, s_in = c, s
        g0 = _noise_like(c, SEED)
        beta = SERIES_STYLE_WEIGHT
        spec = ",".join(f"{b.width}" + (f"x{b.dilation}" if b.dilation > 1 else "") + f":{b.filters}" for b in branches)
        info = (f"{ECG_FILE} ({c.shape[1]} leads x {c.shape[-1]} samples), style = it reversed in time; "
                f"period {period} samples, branches {spec}")
    else:
        raise ValueError(name)
    content_layer, layers, alpha, beta = _weights(net, c_in, None, None, None, beta)
    return Case(net, c, s, c_in, s_in, g0.to(device), content_layer, layers, alpha, beta,
                f"{info}; content {content_layer}, style {','.join(layers)}, α={alpha:.4g}, β={beta:g}")


# ----------------------------------------------------------------------------- nstyle


def run_nstyle(name: str, case: Case, total_steps: int, device: torch.device) -> tuple[list[float], float, object]:
    """Step end times (index 0: the start), J at the first step and the run."""
    from nstyle.core.engine import optimize
    from nstyle.core.objective import StyleObjective

    times: list[float] = []

    def tick(info, g) -> None:  # optimize's record() has already synced J to floats
        _sync(device)
        times.append(time.perf_counter())

    objective = StyleObjective(case.net, case.c_in, case.s_in, case.content_layer, case.layers, case.alpha, case.beta)
    _sync(device)
    times.append(time.perf_counter())  # the targets are built: from here on, steps only
    run = optimize(objective, case.g0, total_steps, optimizer="lbfgs", callback=tick)
    return times, run.history[0].total, run


def time_griffin_lim(case: Case, g: torch.Tensor, device: torch.device) -> float:
    """Seconds for magnitude mode's phase recovery, as stylize_audio runs it after the steps."""
    from nstyle.modalities.audio import griffin_lim, stft_phase

    _sync(device)
    t0 = time.perf_counter()
    phase = stft_phase(case.c_raw, N_FFT, HOP)
    griffin_lim(g.detach().abs(), N_FFT, HOP, length=case.c_raw.shape[-1], n_iter=GRIFFIN_LIM_ITERS, phase=phase)
    _sync(device)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- reference


def run_reference(name: str, case: Case, total_steps: int, device: torch.device) -> tuple[list[float], float, None]:
    """A plain loop that recomputes every target, STFTs included, in every closure call."""
    convs = {f"relu_{bname}": conv for bname, conv in case.net.convs.items()}  # same weights
    window = torch.hann_window(N_FFT, device=device)

    def spectrogram(x: torch.Tensor) -> torch.Tensor:  # (1, 1, T) -> log(1 + |STFT|), (1, 513, frames)
        spec = torch.stft(x.reshape(1, -1), N_FFT, hop_length=HOP, win_length=N_FFT, window=window,
                          center=True, pad_mode="reflect", return_complex=True)
        return torch.log1p(spec.abs())

    if name == "waveform":  # G, C and S are waveforms; the net sees their log-magnitudes
        g_to_net = cs_to_net = spectrogram
    elif name == "magnitude":  # G is the log-magnitude, C and S are waveforms
        g_to_net, cs_to_net = torch.abs, (lambda x: spectrogram(x).abs())
    else:
        g_to_net = cs_to_net = lambda x: x

    def relu_conv(h: torch.Tensor, layer: str) -> torch.Tensor:
        conv = convs[layer]
        return torch.relu(F.conv1d(h, conv.weight, dilation=conv.dilation))

    def gram(a: torch.Tensor) -> torch.Tensor:  # G / (2 · M · n_C)
        f = a.flatten(2)
        return (f @ f.transpose(1, 2)) / (2.0 * f.shape[2] * f.shape[1])

    g = case.g0.detach().clone().contiguous().requires_grad_(True)
    opt = torch.optim.LBFGS([g], **LBFGS_ARGS)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        with torch.no_grad():  # the targets, again, every call
            x_c, x_s = cs_to_net(case.c_raw), cs_to_net(case.s_raw)
            content_act = relu_conv(x_c, case.content_layer)
            style_grams = {n: gram(relu_conv(x_s, n)) for n in case.layers}
        x_g = g_to_net(g)
        acts = {n: relu_conv(x_g, n) for n in set(case.layers) | {case.content_layer}}
        j_content = 0.5 * (acts[case.content_layer] - content_act).pow(2).sum()
        j_style = sum(lam * (gram(acts[n]) - style_grams[n]).pow(2).sum() for n, lam in case.layers.items())
        loss = case.alpha * j_content + case.beta * j_style
        loss.backward()
        return loss

    _sync(device)
    times = [time.perf_counter()]
    first = None
    for _ in range(total_steps):
        loss = opt.step(closure)
        if first is None:
            first = float(loss.detach())
        _sync(device)
        times.append(time.perf_counter())
    return times, float(first), None


# ----------------------------------------------------------------------------- worker


def worker(spec: dict) -> dict:
    """One configuration, in this (fresh) process: s/step, peak MiB, J0 (+ Griffin-Lim s)."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    case = build_case(spec["case"], device)
    warmup, steps = spec["warmup"], spec["steps"]
    probe = MemoryProbe(device)
    probe.start()
    fn = run_nstyle if spec["impl"] == "nstyle" else run_reference
    times, j0, run = fn(spec["case"], case, warmup + steps, device)
    peak = probe.peak_mib()
    if len(times) < warmup + steps + 1:
        raise RuntimeError(f"only {len(times) - 1} of {warmup + steps} steps ran")
    durations = [b - a for a, b in zip(times[warmup:], times[warmup + 1:])]
    out = {"s_per_step": statistics.median(durations), "mean_s_per_step": statistics.fmean(durations),
           "peak_mib": peak, "j0": j0, "mem_method": probe.method, "info": case.info}
    if spec["impl"] == "nstyle" and spec["case"] == "magnitude":
        out["griffin_lim_s"] = time_griffin_lim(case, run.g, device)
    return out


def run_config(spec: dict) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter and return its result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker failed for {spec['impl']} {spec['case']}")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- report


def table(rows: list[list[str]]) -> str:
    cols = ["case", "nstyle s/step", "reference s/step", "ratio", "nstyle peak MiB", "reference peak MiB"]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = lambda cells: "| " + " | ".join(
        v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(cells, widths))) + " |"
    return "\n".join([fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, from {', '.join(CASES)} (default all)")
    a = p.parse_args(argv)

    if a._worker:
        print(json.dumps(worker(json.loads(a._worker))), flush=True)
        return

    device = checked_device(p, a.device)
    cases = [v.strip() for v in a.cases.split(",") if v.strip()]
    for c in cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    if a.steps < 1 or a.warmup < 0 or a.repeats < 1:
        p.error("--steps and --repeats must be >= 1, --warmup >= 0")
    if a.threads:
        torch.set_num_threads(a.threads)

    print("\n".join(header(device, torch.get_num_threads())))
    if {"waveform", "magnitude"} & set(cases):
        found = CONTENT_WAV.is_file() and STYLE_WAV.is_file()
        print("audio: " + (f"content {CONTENT_WAV}, style {STYLE_WAV}, resampled to {RATE} Hz and looped to "
                           f"{SECONDS:g} s" if found else "SYNTHESISED with numpy, the ALSA sample WAVs are missing: "
                           f"content a 110->3520 Hz chirp, style white noise, {SECONDS:g} s at {RATE} Hz"))
    print(f"n_fft {N_FFT}, hop {HOP}; L-BFGS max_iter=1, init noise; {a.warmup} warm-up + {a.steps} timed steps "
          f"(median reported) per run, {a.repeats} run(s) per configuration, each in a fresh process\n", flush=True)

    rows, notes, methods, gl_times = [], [], set(), []
    for name in cases:
        res: dict[str, dict] = {}
        for rep in range(a.repeats):
            for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
                spec = {"impl": impl, "case": name, "device": a.device, "steps": a.steps,
                        "warmup": a.warmup, "threads": a.threads}
                out = run_config(spec)
                methods.add(out["mem_method"])
                if not res:
                    print(f"{CASES[name]}: {out['info']}")
                print(f"  {name:9s} {impl:9s}: {out['s_per_step']:.3f} s/step (median; mean "
                      f"{out['mean_s_per_step']:.3f}), peak +{out['peak_mib']:.0f} MiB, J0 {out['j0']:.8g}", flush=True)
                if "griffin_lim_s" in out:
                    gl_times.append(out["griffin_lim_s"])
                best = res.setdefault(impl, dict(out, case=name))
                best["s_per_step"] = min(best["s_per_step"], out["s_per_step"])
                best["peak_mib"] = min(best["peak_mib"], out["peak_mib"])
        n, r = res["nstyle"], res["reference"]
        rel = abs(n["j0"] - r["j0"]) / max(abs(r["j0"]), 1e-30)
        verdict = "agree" if rel <= 1e-4 else "DIFFER"
        notes.append(f"{CASES[name]}: J at step 0 nstyle {n['j0']:.8g}, reference {r['j0']:.8g} "
                     f"(rel. diff {rel:.1e}: {verdict})")
        rows.append([CASES[name], f"{n['s_per_step']:.3f}", f"{r['s_per_step']:.3f}",
                     f"{r['s_per_step'] / n['s_per_step']:.2f}", f"{n['peak_mib']:.0f}", f"{r['peak_mib']:.0f}"])

    print()
    print(table(rows))
    print("\nratio: reference s/step / nstyle s/step; peak MiB: memory above the baseline held before the run "
          f"({'; '.join(sorted(methods))})")
    if gl_times:
        print(f"Griffin-Lim after magnitude mode ({GRIFFIN_LIM_ITERS} iterations, 10 s, once per run, not in "
              f"s/step): {min(gl_times):.2f} s")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
