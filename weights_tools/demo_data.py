"""Training data for the demo models (weights_tools/train_demo.py): FSDD clips, synthetic voices
(espeak-ng, flite, festival) and the augmentation that turns a few voices into many.

The synthetic voices do not depend on which FSDD speaker is held out, so one synthesis is cached
(``--tts-cache``) and shared by the leave-one-speaker-out folds and the final run.
"""
from __future__ import annotations

import math
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 16000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FSDD_SPEAKERS = ["george", "jackson", "nicolas", "theo", "yweweler"]
ESPEAK_ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd", "en-us-nyc",
                  "en-gb-x-gbclan"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["voice_kal_diphone", "voice_ked_diphone", "voice_cmu_us_slt_arctic_hts"]
TTS_PACKAGES = "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"


# ----------------------------------------------------------------------------- signal helpers

def to16k(x: np.ndarray, sr: int) -> np.ndarray:
    x = x.astype(np.float32)
    if sr != SR:
        x = soxr.resample(x, sr, SR, quality="HQ").astype(np.float32)
    return x


def read16k(path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return to16k(x.mean(axis=1), sr)


def fsdd_clips(root: Path, speaker: str):
    """A speaker's clip files, sorted by (digit, take)."""
    return sorted(root.glob(f"*_{speaker}_*.wav"), key=lambda p: (int(p.name.split("_")[0]), int(p.stem.split("_")[2])))


def load_fsdd(root: Path, speakers):
    """{speaker: [(digit, wave16k)]}"""
    return {s: [(int(f.name.split("_")[0]), read16k(f)) for f in fsdd_clips(root, s)] for s in speakers}


def trim(x: np.ndarray, rel_db: float = -35.0, pad: int = 800) -> np.ndarray:
    """Cut leading/trailing near-silence (synthesisers add a lot), keep `pad` samples."""
    if len(x) < 400:
        return x
    frame = 160
    n = len(x) // frame
    e = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(e / e.max())
    idx = np.nonzero(db > rel_db)[0]
    if len(idx) == 0:
        return x
    a = max(0, idx[0] * frame - pad)
    b = min(len(x), (idx[-1] + 1) * frame + pad)
    return x[a:b]


def band_limit(x: np.ndarray, rate: float = 8000) -> np.ndarray:
    """Through `rate` Hz and back (8 kHz: like the FSDD recordings)."""
    return soxr.resample(soxr.resample(x, SR, rate, quality="HQ"), rate, SR, quality="HQ").astype(np.float32)


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch), via resampling."""
    return soxr.resample(x, SR, SR / factor, quality="HQ").astype(np.float32)


def edit_distance(a, b) -> int:
    """Levenshtein distance of two sequences (words, for the word error rate)."""
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev, d[j] = d[j], cur
    return d[-1]


# ----------------------------------------------------------------------------- synthetic voices

def espeak_variants():
    """Every espeak-ng voice variant installed (Debian: about 100 under espeak-ng-data/voices/!v)."""
    p = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
    names = [line.split()[4].split("/")[-1] for line in p.stdout.splitlines()[1:] if len(line.split()) > 4]
    return [""] + sorted(set(names))


def require_tts():
    missing = [t for t in ("espeak-ng", "flite", "text2wave") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"demo_data: {', '.join(missing)} not found; install the Debian packages {TTS_PACKAGES}")


def espeak(text: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    wav = tmp / "e.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    return trim(to16k(x.mean(axis=1), sr))


class Synth:
    """One synthetic voice setting: engine, voice, speed and pitch."""

    def __init__(self, rng: random.Random, variants):
        r = rng.random()
        if r < 0.7:
            variant = rng.choice(variants)
            self.engine, self.voice = "espeak", rng.choice(ESPEAK_ACCENTS) + ("+" + variant if variant else "")
            self.speed, self.pitch = rng.randint(100, 240), rng.randint(10, 90)
        elif r < 0.88:
            self.engine, self.voice = "flite", rng.choice(FLITE_VOICES)
            self.speed, self.pitch = rng.uniform(0.75, 1.5), rng.uniform(70, 230)
        else:
            self.engine, self.voice = "festival", rng.choice(FESTIVAL_VOICES)
            self.speed, self.pitch = rng.uniform(0.75, 1.5), 0

    def __call__(self, text: str, tmp: Path) -> np.ndarray:
        wav = tmp / "s.wav"
        if self.engine == "espeak":
            return espeak(text, self.voice, self.speed, self.pitch, tmp)
        if self.engine == "flite":
            cmd = ["flite", "-voice", self.voice, "--setf", f"duration_stretch={self.speed:.3f}",
                   "--setf", f"int_f0_target_mean={self.pitch:.0f}", "-t", text, "-o", str(wav)]
        else:
            cmd = ["text2wave", "-eval", f"({self.voice})",
                   "-eval", f"(Parameter.set 'Duration_Stretch {self.speed:.3f})", "-o", str(wav)]
        subprocess.run(cmd, input=text if self.engine == "festival" else None, text=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        return trim(to16k(x.mean(axis=1), sr))


def _synthesise(seed: int, n_voices: int, n_phrases: int):
    rng = random.Random(seed)
    variants = espeak_variants()

    def channel(x):  # most synthetic speech goes through the 8 kHz channel of the FSDD recordings
        return band_limit(x) if rng.random() < 0.75 else x

    singles, phrases = [], []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for v in range(n_voices):
            s = Synth(rng, variants)
            singles.append([(d, channel(s(w, tmp))) for d, w in enumerate(WORDS)])
        for _ in range(n_phrases):
            s = Synth(rng, variants)
            digits = [rng.randrange(10) for _ in range(rng.randint(1, 5))]
            sep = rng.choice([" ", ", ", ". "])
            phrases.append((digits, channel(s(sep.join(WORDS[d] for d in digits), tmp))))
    return singles, phrases


def synthetic_speech(seed: int, n_voices: int, n_phrases: int, cache: Path | None):
    """({"tts<i>": [(digit, wave)]} for n_voices random voices, [(digits, wave)] phrases); cached as
    plain arrays in an .npz (no pickle) under `cache` when given."""
    path = cache / f"tts-{seed}-{n_voices}-{n_phrases}.npz" if cache else None
    if path is not None and path.exists():
        z = np.load(path, allow_pickle=False)
        audio, starts, ends, labels, kinds = (z[k] for k in ("audio", "starts", "ends", "labels", "kinds"))
        singles, phrases = {}, []
        for k in range(len(starts)):
            x = audio[starts[k]:ends[k]]
            digits = [int(d) for d in labels[k] if d >= 0]
            if kinds[k] >= 0:
                singles.setdefault(f"tts{kinds[k]}", []).append((digits[0], x))
            else:
                phrases.append((digits, x))
        return singles, phrases
    require_tts()
    single_lists, phrases = _synthesise(seed, n_voices, n_phrases)
    singles = {f"tts{v}": items for v, items in enumerate(single_lists)}
    if path is not None:
        items = [(v, [d], x) for v, lst in enumerate(single_lists) for d, x in lst] + [(-1, ds, x) for ds, x in phrases]
        lens = np.array([len(x) for _, _, x in items])
        ends = np.cumsum(lens)
        labels = np.full((len(items), 5), -1, np.int8)
        for k, (_, ds, _) in enumerate(items):
            labels[k, : len(ds)] = ds
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, audio=np.concatenate([x for _, _, x in items]), starts=ends - lens, ends=ends,
                 labels=labels, kinds=np.array([v for v, _, _ in items]))
    return singles, phrases


# ----------------------------------------------------------------------------- augmentation

def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(len(spec)), 1.0)
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (x / (np.sqrt((x ** 2).mean()) + 1e-12)).astype(np.float32)


class Augment:
    def __init__(self, rng: np.random.Generator, dull_prob: float = 0.3, edge_cut_prob: float = 0.3):
        self.rng = rng
        self.dull_prob = dull_prob
        self.edge_cut_prob = edge_cut_prob

    def silence(self, lo: float, hi: float) -> np.ndarray:
        return np.zeros(int(self.rng.uniform(lo, hi) * SR), np.float32)

    def voice(self, x: np.ndarray) -> np.ndarray:
        """A new "speaker" from a clip: random speed (tempo, pitch and formants move together, like
        vocal tract length perturbation), sometimes a duller channel, and a random first-order
        spectral tilt (another microphone)."""
        if self.rng.random() < 0.85:
            x = speed_perturb(x, float(self.rng.uniform(0.78, 1.22)))
        if self.rng.random() < self.dull_prob:  # a duller channel: cut at 2.5-3.5 kHz, so weak fricatives still count
            x = band_limit(x, float(self.rng.uniform(5000, 7000)))
        a = float(self.rng.uniform(-0.6, 0.9))
        return np.append(x[:1], x[1:] - a * x[:-1]).astype(np.float32)

    def endpoints(self, x: np.ndarray) -> np.ndarray:
        """Sometimes cut a clip down to its loud core, as an aggressive endpointer does: some FSDD
        clips have lost their weak edges that way (a "six" with neither /s/ left)."""
        if self.rng.random() < self.edge_cut_prob:
            x = trim(x, rel_db=float(self.rng.uniform(-20, -6)), pad=int(self.rng.integers(0, 320)))
        return x

    def room(self, x: np.ndarray) -> np.ndarray:
        """A synthetic room: direct path plus exponentially decaying noise (RT60 0.1-0.7 s)."""
        rt60 = float(self.rng.uniform(0.1, 0.7))
        n = int(rt60 * SR)
        t = np.arange(n) / SR
        h = self.rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
        h[0] = 0.0
        h *= 10 ** (self.rng.uniform(-12, 3) / 20) / (np.sqrt((h ** 2).sum()) + 1e-12)  # reverb-to-direct
        h[0] = 1.0
        m = len(x) + n - 1
        size = 1 << (m - 1).bit_length()
        y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x) + n // 2]
        return y.astype(np.float32)

    def finish(self, x: np.ndarray) -> np.ndarray:
        """Room (35 %), noise (white/pink/brown, SNR 5-50 dB; the silence around the speech gets the
        same floor), then a level anywhere from a whisper to clipping: peak 0.006-1.25, cut at +-1
        like an overdriven recorder, rounded to 16 bits half the time."""
        if self.rng.random() < 0.35:
            x = self.room(x)
        rms = math.sqrt(float((x ** 2).mean()) + 1e-12)
        snr = self.rng.uniform(5, 50) if self.rng.random() < 0.8 else 60.0
        x = x + colored_noise(self.rng, len(x), float(self.rng.choice([0.0, 1.0, 2.0]))) * (rms / 10 ** (snr / 20))
        if self.rng.random() < 0.1:  # mains hum
            t = np.arange(len(x)) / SR
            x = x + rms * 10 ** (-self.rng.uniform(15, 40) / 20) * np.sin(2 * np.pi * self.rng.choice([50, 60]) * t)
        peak = float(np.abs(x).max()) + 1e-9
        x = np.clip(x * (10 ** self.rng.uniform(-2.2, 0.1) / peak), -1.0, 1.0)
        if self.rng.random() < 0.5:
            x = np.round(x * 32767) / 32767
        return x.astype(np.float32)


def length_bucketed(make_example, batch: int, pool: int = 4):
    """Batches of similar-length examples: draw pool*batch examples, sort them by length, cut into
    `pool` batches (served in random order). Padding to the longest clip is most of the waste on a
    CPU otherwise."""
    ready = []

    def next_batch(rng: random.Random):
        if not ready:
            examples = sorted((make_example() for _ in range(pool * batch)), key=lambda e: len(e[1]))
            chunks = [examples[i: i + batch] for i in range(0, len(examples), batch)]
            rng.shuffle(chunks)
            ready.extend(chunks)
        return ready.pop()

    return next_batch
