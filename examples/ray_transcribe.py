"""Transcribe many audio files with Ray Data: one loaded d2v model per actor, each actor using as
many threads as the CPUs it reserves; transcripts written as Parquet.

    pip install . "ray[data]"                  # the d2v Python package and Ray
    python examples/ray_transcribe.py --model models/digits-ctc.gguf --input samples/ --output transcripts/
    python examples/ray_transcribe.py --model m.gguf --input files.parquet --output out/   # Parquet with a 'path' column

Without --address it starts a local Ray (all of this machine's CPUs, or --num-cpus). On a cluster,
pass --address auto (or set RAY_ADDRESS) from a node of the cluster: the same script then spreads
the actors over every node. The model file and the audio paths must be readable on every node
(shared storage), and the d2v package installed in every node's Python environment.
Output: one row per file: path, transcript, error (empty, or why that file failed).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import ray

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class Transcriber:
    """A Ray Data actor: loads the model once, then transcribes batch after batch."""

    def __init__(self, model_path: str, threads: int):
        import d2v

        d2v.set_num_threads(threads)
        self.model = d2v.Model(model_path)
        self.error = d2v.Error

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts, errors = [], []
        for path in batch["path"]:  # one file per call: a bad file fails alone, no padding across lengths
            try:
                texts.append(self.model.audio(str(path)).items[0]["text"])
                errors.append("")
            except self.error as e:
                texts.append("")
                errors.append(str(e))
        return {"path": batch["path"], "transcript": np.array(texts), "error": np.array(errors)}


def audio_paths(folder: str) -> list[str]:
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(AUDIO_SUFFIXES)]
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a CTC model file (d2v-convert output)")
    p.add_argument("--input", required=True, help="a folder of audio files, or Parquet with a 'path' column")
    p.add_argument("--output", required=True, help="output folder for the Parquet files")
    p.add_argument("--address", help="Ray cluster address (e.g. 'auto'); default: a local Ray")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--cpus-per-actor", type=int, default=1, help="threads per model copy")
    p.add_argument("--actors", type=int, help="model copies (default: (cluster CPUs - 1) // cpus-per-actor)")
    p.add_argument("--batch-size", type=int, default=16)
    a = p.parse_args(argv)

    model = os.path.abspath(a.model)
    if a.address:
        ray.init(address=a.address)
    else:
        ray.init(num_cpus=a.num_cpus, include_dashboard=False, log_to_driver=False)
    if os.path.isdir(a.input):
        paths = [os.path.abspath(f) for f in audio_paths(a.input)]
        if not paths:
            raise SystemExit(f"ray_transcribe: no {'/'.join(AUDIO_SUFFIXES)} files under {a.input}")
        ds = ray.data.from_items([{"path": f} for f in paths])
    else:
        ds = ray.data.read_parquet(a.input, columns=["path"])
    # Leave one CPU to the read tasks: actors holding every CPU would starve read_parquet forever.
    actors = a.actors or max(1, (int(ray.cluster_resources().get("CPU", 1)) - 1) // a.cpus_per_actor)
    out = ds.map_batches(Transcriber, fn_constructor_args=(model, a.cpus_per_actor), batch_size=a.batch_size,
                         num_cpus=a.cpus_per_actor, concurrency=actors, batch_format="numpy")
    out.write_parquet(a.output)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
