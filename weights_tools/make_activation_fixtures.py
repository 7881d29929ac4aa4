"""Reference outputs for every activation Transformers' ACT2FN offers without learned parameters.

Writes tests/fixtures/activations/inputs.npy and <name>.npy (float32, ACT2FN[name] applied by
Transformers/PyTorch to the inputs), which tests/test_kernels.cpp compares our kernels with.
Run in the reference environment: ~/.cache/d2v-ref/bin/python weights_tools/make_activation_fixtures.py
"""

import os

import numpy as np
import torch
import transformers
from transformers.activations import ACT2CLS, ACT2FN

from fixture_common import REPO, log, save_npy

# These two have nn.Parameters (a learned slope / learned alphas); the C++ side refuses them.
WITH_PARAMETERS = {"prelu", "xielu"}


def main():
    out = os.path.join(REPO, "tests", "fixtures", "activations")
    # A dense sweep over the range where the functions bend, the clipping / threshold edges
    # (gelu_10 at +-10, relu6 at 6, hardswish at +-3, softplus's threshold at 20), and far tails.
    sweep = np.linspace(-8.0, 8.0, 161)
    edges = [-1e4, -100.0, -40.0, -20.5, -10.5, -10.0, -3.0, -1e-6, 0.0, 1e-6, 3.0, 6.0, 10.0, 10.5, 19.9, 20.0, 20.5, 40.0, 100.0, 1e4]
    x = torch.tensor(np.concatenate([sweep, edges]), dtype=torch.float32)
    log(f"transformers {transformers.__version__}, torch {torch.__version__}")
    save_npy(os.path.join(out, "inputs.npy"), x.numpy())
    for name in sorted(ACT2CLS):
        if name in WITH_PARAMETERS:
            continue
        with torch.no_grad():
            y = ACT2FN[name](x.clone())
        save_npy(os.path.join(out, f"{name}.npy"), y.numpy(), quiet=True)
    log(f"  wrote {len(ACT2CLS) - len(WITH_PARAMETERS)} activations to {os.path.relpath(out, REPO)}")


if __name__ == "__main__":
    main()
