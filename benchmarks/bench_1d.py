"""Seconds per optimisation step and peak memory: nstyle's 1D paths against a plain loop.

Three cases, each with nstyle's defaults but the seed's absolute costs (``balance="absolute"``,
which the plain loop below writes out; the default relative balance only divides the two
costs by constants computed once, so the time per step is the same):

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
  which magnitude mode runs once after the last step (the adapter's ``finish``), is timed
  separately, once per run.
* **ECG series**: pydicom's bundled ``waveform_ecg.dcm`` (12 leads x 10000 samples),
  each lead standardised; style is the same recording reversed in time (pydicom bundles
  one ECG; the Grams' values, not the cost, depend on the choice). Branches from
  ``series_branches(estimate_period(...))`` (5-tap, 256 filters, dilations 1, 4, 16, 64),
  α as above, β = 10, init noise (seed 0).

For each case this times

* **nstyle**: what ``stylize_audio`` / ``stylize_series`` run (``_common.prepare``: the
  kind's settings, loader and network through nstyle's own adapter, then
  ``nstyle.pipeline.build_objective``, ``start_at_scale`` and ``optimize`` with the
  optimiser the run picks, L-BFGS), so every default above is nstyle's own. The inputs go
  through nstyle's loaders (the looped clips as float WAVs, the reversed ECG as a ``.npy``,
  written to a scratch folder first); loading and Griffin-Lim stay out of the timing. The
  content activations and style Grams are computed once, before the first step.
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
what is held just before it (network, signals, interpreter), measured by
``_common.MemoryProbe`` (as in bench_image.py): on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    MemoryProbe,
    Setup,
    StepClock,
    add_run_options,
    checked_device,
    header,
    lbfgs_args,
    markdown_table,
    plain_gram,
    prepare,
    run_worker,
    sync,
)

from nstyle.options import AudioSettings

AUDIO = AudioSettings()  # nstyle's defaults for sound: rate, n_fft, hop, Griffin-Lim iterations
RATE = AUDIO.rate
SECONDS = 10.0
N_FFT, HOP = AUDIO.n_fft, AUDIO.hop
CONTENT_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
STYLE_WAV = Path("/usr/share/sounds/alsa/Noise.wav")
ECG_FILE = "waveform_ecg.dcm"
GRIFFIN_LIM_ITERS = AUDIO.griffin_lim_iters
SEED = 0
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
    as_t = lambda a: torch.from_numpy(a.astype(np.float32))[None, None]  # noqa: E731
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


def write_wav(x: torch.Tensor, path: Path) -> Path:
    """(1, 1, T) as a float WAV at RATE: ``load_audio`` reads the same samples back."""
    import soundfile as sf

    sf.write(str(path), x[0].T.numpy(), RATE, subtype="FLOAT")
    return path


@dataclass
class Case:
    """What both loops share: nstyle's run (network, signals, weights) and the raw inputs."""

    run: Setup
    c_raw: torch.Tensor  # content as loaded (waveform / the standardised series)
    s_raw: torch.Tensor
    info: str


def build_case(name: str, device: torch.device) -> Case:
    """The run stylize_audio / stylize_series sets up, with their defaults (targets not built).

    The inputs go through nstyle's own loaders: the looped clips as float WAVs, the
    reversed ECG as a ``.npy`` (leads x samples), written to a scratch folder first.
    """
    from pydicom.data import get_testdata_file

    with tempfile.TemporaryDirectory() as folder:
        if name in ("waveform", "magnitude"):
            c, s, source = audio_pair()
            paths = write_wav(c, Path(folder) / "content.wav"), write_wav(s, Path(folder) / "style.wav")
            run = prepare("audio", *paths, device, mode=name, balance="absolute")
            c_raw = run.signals.meta.waveform  # the content waveform, as loaded
            s_raw = s.to(device) if name == "magnitude" else run.style
            frames = 1 + c_raw.shape[-1] // HOP
            info = (f"{source}; {c_raw.shape[-1]} samples at {RATE} Hz, {frames} frames x {N_FFT // 2 + 1} bins; "
                    f"branches {run.settings.branches}")
        elif name == "series":
            from nstyle.modalities.series import load_series

            ecg = get_testdata_file(ECG_FILE)
            reversed_path = Path(folder) / "reversed.npy"
            np.save(reversed_path, load_series(ecg).tensor[0].flip(-1).numpy())  # (12, 10000), the file's units
            run = prepare("series", ecg, reversed_path, device, balance="absolute")
            c_raw, s_raw = run.content, run.style
            info = (f"{ECG_FILE} ({c_raw.shape[1]} leads x {c_raw.shape[-1]} samples), style = it reversed in time; "
                    f"period {run.network.options['period']} samples, branches {run.network.options['branches']}")
        else:
            raise ValueError(name)
    return Case(run, c_raw, s_raw, info)


def describe(case: Case) -> str:
    content_layers, layers, alpha, beta = case.run.weights()
    return (f"{case.info}; content {','.join(content_layers)}, style {','.join(layers)}, α={alpha:.4g}, "
            f"β={beta:g}")


# ----------------------------------------------------------------------------- nstyle


def run_nstyle(name: str, case: Case, clock: StepClock, total_steps: int) -> tuple[float, object]:
    """nstyle's steps (the targets are built first, off the clock); J at the first step and the run."""
    case.run.build()
    clock.start()  # the targets are built: from here on, steps only
    result = case.run.optimize(total_steps, callback=clock)
    return result.history[0].total, result


def time_griffin_lim(case: Case, g: torch.Tensor, device: torch.device) -> float:
    """Seconds for magnitude mode's phase recovery, as the run finishes it after the steps."""
    sync(device)
    t0 = time.perf_counter()
    case.run.modality.finish(g.detach(), case.run.signals, case.run.settings)
    sync(device)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- reference


def run_reference(name: str, case: Case, clock: StepClock, total_steps: int) -> tuple[float, None]:
    """A plain loop that recomputes every target, STFTs included, in every closure call."""
    run = case.run
    (content_layer,), layers, alpha, beta = run.weights()
    device = run.device
    convs = {f"relu_{bname}": conv for bname, conv in run.model.convs.items()}  # same weights
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
        g_to_net = cs_to_net = lambda x: x  # noqa: E731

    def relu_conv(h: torch.Tensor, layer: str) -> torch.Tensor:
        conv = convs[layer]
        return torch.relu(F.conv1d(h, conv.weight, dilation=conv.dilation))

    g = run.start().detach().clone().contiguous().requires_grad_(True)
    opt = torch.optim.LBFGS([g], **lbfgs_args(g.numel()))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        with torch.no_grad():  # the targets, again, every call
            x_c, x_s = cs_to_net(case.c_raw), cs_to_net(case.s_raw)
            content_act = relu_conv(x_c, content_layer)
            style_grams = {n: plain_gram(relu_conv(x_s, n)) for n in layers}
        x_g = g_to_net(g)
        acts = {n: relu_conv(x_g, n) for n in set(layers) | {content_layer}}
        j_content = 0.5 * (acts[content_layer] - content_act).pow(2).sum()
        j_style = sum(lam * (plain_gram(acts[n]) - style_grams[n]).pow(2).sum() for n, lam in layers.items())
        loss = alpha * j_content + beta * j_style
        loss.backward()
        return loss

    clock.start()
    first = None
    for _ in range(total_steps):
        loss = opt.step(closure)
        if first is None:
            first = float(loss.detach())
        clock.tick()
    return float(first), None


# ----------------------------------------------------------------------------- worker


def worker(spec: dict) -> dict:
    """One configuration, in this (fresh) process: s/step, peak MiB, J0 (+ Griffin-Lim s)."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    case = build_case(spec["case"], device)
    warmup, steps = spec["warmup"], spec["steps"]
    clock = StepClock(device)
    probe = MemoryProbe(device)
    probe.start()
    fn = run_nstyle if spec["impl"] == "nstyle" else run_reference
    j0, result = fn(spec["case"], case, clock, warmup + steps)
    peak = probe.peak_mib()
    out = {**clock.per_step(warmup, steps), "peak_mib": peak, "j0": j0, "mem_method": probe.method,
           "info": describe(case)}
    if spec["impl"] == "nstyle" and spec["case"] == "magnitude":
        out["griffin_lim_s"] = time_griffin_lim(case, result.g, device)
    return out


def run_config(spec: dict) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter and return its result."""
    return run_worker(__file__, spec, f"worker failed for {spec['impl']} {spec['case']}")


# ----------------------------------------------------------------------------- report


def table(rows: list[list[str]]) -> str:
    return markdown_table(["case", "nstyle s/step", "reference s/step", "ratio", "nstyle peak MiB",
                           "reference peak MiB"], rows, left=(0,))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, from {', '.join(CASES)} (default all)")
    a = p.parse_args(argv)

    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))), flush=True)
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
