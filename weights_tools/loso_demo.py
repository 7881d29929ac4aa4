#!/usr/bin/env python3
"""Leave-one-speaker-out measurement of the demo-model recipe (weights_tools/train_demo.py).

For each FSDD speaker: train both demo models on the other four speakers (plus the synthetic
voices), convert them with weights_tools/convert.py, and measure them on the held-out speaker with
the C++ ``d2v-audio`` (weights_tools/eval_demo.py --speaker). Prints and writes (WORK/loso.json)
the per-speaker results, their mean and the worst speaker. ``--final`` also trains the shipped
models on all five speakers in the same queue (WORK/all/*.gguf), so recipe and models match.

Usage (reference venv: torch + transformers + soundfile + soxr + gguf; Debian packages espeak-ng,
flite, festival, festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts)::

    python weights_tools/loso_demo.py --work /tmp/d2v-loso [--jobs 2 --threads 1] [--final]

Five folds plus the final run take about 3.5 hours on an idle 2-core machine with train_demo.py's
defaults (two runs at a time, one thread each, about 67 min per run: the small model and the
single-threaded data pipeline use 2 threads poorly). A change to the stages after stage 2 is
measured in a fraction of that with ``--stage2-from ROOT``: each run continues from the stage-2
CTC model of an earlier run (ROOT: that run's WORK).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from demo_data import FSDD_SPEAKERS  # noqa: E402


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def run(cmd, logfile: Path):
    with open(logfile, "a") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        p = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[1] if len(cmd) > 1 else cmd[0]} failed ({p.returncode}); see {logfile}")


def job(speaker: str, args) -> dict:
    out = args.work / speaker
    out.mkdir(parents=True, exist_ok=True)
    logfile = out / "log.txt"
    py = sys.executable
    t0 = time.time()
    held = speaker if speaker != "all" else "none"
    log(f"{speaker}: training (log {logfile})")
    run([py, HERE / "train_demo.py", "--out", out, "--held-out", held, "--threads", args.threads,
         "--fsdd", args.fsdd, *(["--tts-cache", args.tts_cache] if args.tts_cache else []),
         *(["--stage2-from", stage2_model(args.stage2_from, speaker)] if args.stage2_from else []), *args.train_args],
        logfile)
    for name in ("digits-ctc", "digits-classify"):
        run([py, HERE / "convert.py", out / name, out / f"{name}.gguf"], logfile)
    result = {"speaker": speaker, "train_seconds": round(time.time() - t0)}
    if held != "none":
        ev = out / "eval.json"
        run([py, HERE / "eval_demo.py", "--bin", args.bin, "--speaker", speaker, "--fsdd", args.fsdd,
             "--ctc", out / "digits-ctc.gguf", "--classify", out / "digits-classify.gguf",
             "--parity-files", "5", "--threads", args.threads, "--json-out", ev], logfile)
        result.update(fold_result(ev))
        log(f"{speaker}: accuracy {result['accuracy']:.1f} %, WER {result['wer']:.1f} % "
            f"({result['wer_words']:.1f} % with --words) ({time.time() - t0:.0f} s)")
    else:
        log(f"{speaker}: final models in {out} ({time.time() - t0:.0f} s)")
    return result


def stage2_model(root: Path, speaker: str) -> Path:
    """ROOT/SPEAKER/stage2-ctc when ROOT is an earlier WORK folder, else ROOT/SPEAKER itself."""
    saved = root / speaker / "stage2-ctc"
    return saved if saved.is_dir() else root / speaker


def fold_result(eval_json: Path) -> dict:
    summary = json.loads(eval_json.read_text())["summary"]
    return dict(accuracy=summary["classify"]["accuracy"], wer=summary["ctc"]["wer"],
                wer_words=summary["ctc"]["wer_words"], per_digit_accuracy=summary["classify"]["per_digit_accuracy"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--speakers", nargs="+", default=FSDD_SPEAKERS, choices=FSDD_SPEAKERS)
    ap.add_argument("--final", action="store_true", help="also train the shipped models on all five speakers")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch and d2v-audio threads per job")
    ap.add_argument("--fsdd", type=Path, default=HERE.parent.parent / "shared/data/speech/fsdd")
    ap.add_argument("--bin", type=Path, default=HERE.parent / "build/d2v-audio")
    ap.add_argument("--tts-cache", type=Path, help="default: WORK/tts")
    ap.add_argument("--stage2-from", type=Path, metavar="ROOT",
                    help="continue each run from its stage-2 CTC model: ROOT/SPEAKER/stage2-ctc (ROOT: an earlier "
                         "WORK) or else ROOT/SPEAKER (SPEAKER 'all' for --final)")
    ap.add_argument("--min-accuracy", type=float, help="fail if the mean accuracy is below (%%)")
    ap.add_argument("--max-wer", type=float, help="fail if the mean WER is above (%%)")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: summarise the folds already measured in WORK (WORK/SPEAKER/eval.json)")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: passed on to train_demo.py")
    args = ap.parse_args()
    args.train_args = [a for a in args.train_args if a != "--"]
    args.tts_cache = args.tts_cache or args.work / "tts"
    if args.report_only:
        folds = [{"speaker": s, **fold_result(args.work / s / "eval.json")} for s in args.speakers
                 if (args.work / s / "eval.json").exists()]
        return report(folds, args, 0)
    if not args.bin.exists():
        ap.error(f"{args.bin} not found (scripts/build.sh build -- d2v-audio)")
    args.work.mkdir(parents=True, exist_ok=True)
    # one synthesis for every job (it does not depend on the held-out speaker)
    subprocess.run([sys.executable, str(HERE / "train_demo.py"), "--prepare-tts", "--tts-cache", str(args.tts_cache),
                    *args.train_args], check=True)
    jobs = list(args.speakers) + (["all"] if args.final else [])
    t0 = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda s: job(s, args), jobs))
    return report([r for r in results if r["speaker"] != "all"], args, time.time() - t0)


def report(folds, args, seconds) -> int:
    """Prints the table, writes WORK/loso.json; 0 unless a --min-accuracy / --max-wer is missed."""
    summary = {"folds": folds, "seconds": round(seconds), "train_args": args.train_args}
    ok = True
    if folds:
        acc = [r["accuracy"] for r in folds]
        wer = [r["wer"] for r in folds]
        wer_words = [r["wer_words"] for r in folds]
        summary.update(mean_accuracy=sum(acc) / len(acc), worst_accuracy=min(acc),
                      worst_accuracy_speaker=folds[acc.index(min(acc))]["speaker"],
                      mean_wer=sum(wer) / len(wer), worst_wer=max(wer),
                      worst_wer_speaker=folds[wer.index(max(wer))]["speaker"],
                      mean_wer_words=sum(wer_words) / len(wer_words), worst_wer_words=max(wer_words),
                      worst_wer_words_speaker=folds[wer_words.index(max(wer_words))]["speaker"])
        print("\n| held-out speaker | accuracy % | WER % | WER % with --words |\n|---|---|---|---|")
        for r in folds:
            print(f"| {r['speaker']} | {r['accuracy']:.1f} | {r['wer']:.1f} | {r['wer_words']:.1f} |")
        print(f"| **mean** | **{summary['mean_accuracy']:.1f}** | **{summary['mean_wer']:.1f}** | "
              f"**{summary['mean_wer_words']:.1f}** |")
        print(f"| worst | {summary['worst_accuracy']:.1f} ({summary['worst_accuracy_speaker']}) | "
              f"{summary['worst_wer']:.1f} ({summary['worst_wer_speaker']}) | "
              f"{summary['worst_wer_words']:.1f} ({summary['worst_wer_words_speaker']}) |")
        ok &= args.min_accuracy is None or summary["mean_accuracy"] >= args.min_accuracy
        ok &= args.max_wer is None or summary["mean_wer"] <= args.max_wer
    (args.work / "loso.json").write_text(json.dumps(summary, indent=2))
    log(f"wrote {args.work / 'loso.json'} ({summary['seconds']} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
