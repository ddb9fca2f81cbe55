"""Shared pytest set-up: small thread counts keep the suite fast and stable on 2 cores."""

import torch

torch.set_num_threads(2)
