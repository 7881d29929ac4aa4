"""examples/ray_transcribe.py in a local Ray (2 CPUs): the README's command line, pointed at a folder
holding the bundled samples and one broken file, transcripts read back from the Parquet output."""
from __future__ import annotations

import pathlib
import shlex
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from test_readme import readme_block

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPECTED = {  # what the samples say (espeak-ng, see models/README.md)
    "seven.wav": "SEVEN",
    "three_one_four.wav": "THREE ONE FOUR",
    "two_zero_two_six.wav": "TWO ZERO TWO SIX",
}


def test_ray_transcribes_the_samples(tmp_path):
    inputs = tmp_path / "audio"
    inputs.mkdir()
    for name in EXPECTED:
        (inputs / name).symlink_to(ROOT / "samples" / name)
    (inputs / "broken.wav").write_bytes(b"RIFF not really")  # fails alone, with its reason
    out = tmp_path / "out"
    command = next(line for line in readme_block("Use it from Ray", "sh").splitlines() if "ray_transcribe.py" in line)
    args = shlex.split(command)
    assert args[0] == "python"
    # argparse keeps the last of a repeated option: same command, our folders, a 2-CPU local Ray
    args += ["--input", str(inputs), "--output", str(out), "--num-cpus", "2", "--actors", "1", "--batch-size", "2"]
    r = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pq.read_table(out).to_pylist()
    got = {pathlib.Path(row["path"]).name: (row["transcript"], row["error"]) for row in rows}
    assert {k: v[0] for k, v in got.items() if k in EXPECTED} == EXPECTED
    assert all(got[k][1] == "" for k in EXPECTED)
    assert got["broken.wav"][0] == "" and "broken.wav" in got["broken.wav"][1]


def test_ray_reads_a_parquet_list_of_paths(tmp_path):
    listing = tmp_path / "files.parquet"
    paths = [str(ROOT / "samples" / name) for name in EXPECTED]
    pq.write_table(pa.table({"path": paths, "other": list(range(len(paths)))}), listing)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "ray_transcribe.py"), "--model",
                        str(ROOT / "models" / "digits-ctc.gguf"), "--input", str(listing), "--output", str(out),
                        "--num-cpus", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pq.read_table(out).to_pylist()
    assert sorted((pathlib.Path(row["path"]).name, row["transcript"]) for row in rows) == sorted(EXPECTED.items())
