"""Helpers shared by the fixture generators.

Used by make_fixtures.py (audio), make_text_fixtures.py, make_vision_fixtures.py and
make_vision_fixtures_tf.py; each generator is run as a script, so this module is found next to it.
Only the standard library and numpy are imported at module level: make_vision_fixtures_tf.py runs in
the TensorFlow environment, which has no torch (torch and transformers are imported by the functions
that need them).

  log, rel                 progress lines; paths relative to the repository root
  save_npy, save_json      the fixture writers: C-order float32 / int64 .npy, strict JSON
  to_numpy, collect_outputs, save_fields, max_abs_by_field
                           a ModelOutput flattened into {field: array} and written as <field>.npy
  redraw_parameters, linear_layernorm
                           the seeded parameter redraw behind every script's perturb_parameters()
  init_torch_reference, add_common_args, selected_names, checkpoint_root, save_pretrained_fresh,
  convert_checkpoint, convert_all
                           the run set-up and the save -> convert.py loop
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERT = os.path.join(REPO, "weights_tools", "convert.py")


# --------------------------------------------------------------------------------------------
# writing


def log(msg):
    print(msg, flush=True)


def rel(path):
    return os.path.relpath(path, REPO)


def save_npy(path, arr, quiet=False):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iub":
        arr = arr.astype(np.int64)
    else:
        raise TypeError(f"{path}: unexpected dtype {arr.dtype}")
    arr = np.array(arr, order="C", copy=True)  # keeps 0-d arrays 0-d (a scalar loss has shape [])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, arr)
    if not quiet:
        log(f"  wrote {rel(path)}  {arr.dtype} {list(arr.shape)}")
    return arr


def strict_json(obj):
    """Non-finite floats as strings ("inf"), numpy scalars as Python numbers, keys as strings."""
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def save_json(path, obj, quiet=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(strict_json(obj), f, indent=2, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    if not quiet:
        log(f"  wrote {rel(path)}")


# --------------------------------------------------------------------------------------------
# model outputs


def to_numpy(t):
    return t.detach().cpu().numpy()


def collect_outputs(out, keys, want_hidden=True, want_attn=True, convert=to_numpy):
    """Flattens a ModelOutput into {field_name: ndarray}: the fields of `keys` that are not None, in
    that order, then hidden_states.<i> and attentions.<i> (when wanted and returned)."""
    fields = {}
    for key in keys:
        v = getattr(out, key, None)
        if v is not None:
            fields[key] = convert(v)
    if want_hidden and getattr(out, "hidden_states", None) is not None:
        for i, h in enumerate(out.hidden_states):
            fields[f"hidden_states.{i}"] = convert(h)
    if want_attn and getattr(out, "attentions", None) is not None:
        for i, a in enumerate(out.attentions):
            fields[f"attentions.{i}"] = convert(a)
    return fields


def save_fields(directory, fields, quiet=False):
    """Writes every array as <directory>/<field>.npy; returns the field names in order."""
    names = []
    for field, arr in fields.items():
        save_npy(os.path.join(directory, f"{field}.npy"), arr, quiet=quiet)
        names.append(field)
    return names


def max_abs_by_field(fields):
    return {k: float(np.abs(v).max()) for k, v in fields.items()}


# --------------------------------------------------------------------------------------------
# parameter perturbation (PyTorch)


def linear_layernorm(module, pname, p, randn):
    """The draws every PyTorch generator shares: Linear weight N(0, 1/in_features), Linear bias
    0.1*N(0,1), LayerNorm weight 1 + 0.2*N(0,1), LayerNorm bias 0.1*N(0,1).  None for anything else."""
    import torch

    if isinstance(module, torch.nn.Linear):
        if pname == "weight":
            return randn(p) / math.sqrt(module.in_features)
        if pname == "bias":
            return 0.1 * randn(p)
    elif isinstance(module, torch.nn.LayerNorm):
        if pname == "weight":
            return 1.0 + 0.2 * randn(p)
        if pname == "bias":
            return 0.1 * randn(p)
    return None


def redraw_parameters(model, gen, rule, buffers=(), strict=False, require_all=False):
    """Overwrite parameters with seeded draws, deterministically.

    Visits model.named_modules() in order and, for each module, its own parameters in registration
    order followed by the buffers named in `buffers` that it has.  rule(module, name, tensor, randn)
    returns the new value, drawn with randn(t) = torch.randn(t.shape, generator=gen, dtype=t.dtype),
    or None to leave the tensor as it is (strict=True: an error).  A tied parameter is drawn every time
    it is met but written only the first time.  require_all=True: every parameter must have been
    written.
    """
    import torch

    def randn(t):
        return torch.randn(t.shape, generator=gen, dtype=t.dtype)

    seen = set()
    with torch.no_grad():
        for mname, module in model.named_modules():
            own = list(module.named_parameters(recurse=False)) + [
                (b, getattr(module, b)) for b in buffers if getattr(module, b, None) is not None
            ]
            for pname, p in own:
                v = rule(module, pname, p, randn)
                if v is None:
                    if strict:
                        full = f"{mname}.{pname}" if mname else pname
                        raise RuntimeError(f"perturb_parameters: unknown parameter {full} ({type(module).__name__})")
                    continue
                if id(p) not in seen:
                    seen.add(id(p))
                    p.copy_(v)
    if require_all:
        for name, p in model.named_parameters(remove_duplicate=False):
            if id(p) not in seen:
                raise AssertionError(f"parameter {name} was not redrawn")


# --------------------------------------------------------------------------------------------
# running a generator


def init_torch_reference(disable_progress_bar=True):
    """Two threads, deterministic algorithms, quiet Transformers."""
    import torch
    import transformers

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    if disable_progress_bar:
        transformers.logging.disable_progress_bar()


def add_common_args(ap, variants):
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="'inputs' and/or variant names (default: everything): " + ", ".join(variants))
    ap.add_argument("--keep-checkpoints", metavar="DIR",
                    help="write the Hugging Face checkpoint directories here instead of a temp dir")


def selected_names(ap, args, variants):
    """--only (or "inputs" and every variant); an unknown name is a command-line error."""
    names = args.only or (["inputs"] + list(variants))
    unknown = [n for n in names if n != "inputs" and n not in variants]
    if unknown:
        ap.error(f"unknown names: {unknown}")
    return names


def checkpoint_root(keep_checkpoints, prefix):
    """(folder for the checkpoint directories, TemporaryDirectory to clean up or None)."""
    if keep_checkpoints:
        root = os.path.abspath(keep_checkpoints)
        os.makedirs(root, exist_ok=True)
        return root, None
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    return tmp.name, tmp


def save_pretrained_fresh(model, ckpt_dir):
    if os.path.isdir(ckpt_dir):
        shutil.rmtree(ckpt_dir)
    model.save_pretrained(ckpt_dir)


def convert_checkpoint(name, ckpt_dir, out_file, python=None, shown=None):
    """Runs convert.py on one checkpoint directory; returns (ok, CompletedProcess).
    `shown` replaces the command line in the progress line."""
    cmd = [python or sys.executable, CONVERT, ckpt_dir, out_file]
    log(f"convert {name}: {shown if shown is not None else ' '.join(cmd)}")
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    ok = r.returncode == 0 and os.path.exists(out_file)
    if ok:
        log(f"  wrote {rel(out_file)}  {os.path.getsize(out_file)} bytes")
    else:
        log(f"  FAILED (rc={r.returncode})\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return ok, r


def convert_all(pending):
    """pending: [(name, checkpoint dir, output .gguf)]; returns the names that failed."""
    return [name for name, ckpt_dir, out_file in pending if not convert_checkpoint(name, ckpt_dir, out_file)[0]]
