"""PK sampling: batches of P identities x K images each, for batch-hard triplet mining."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class RandomIdentitySampler(Sampler[int]):
    """Yield dataset indices so that every ``batch_size`` consecutive ones hold P ids x K images.

    Each identity's images are shuffled and cut into groups of ``num_instances``
    (identities with fewer images are sampled with replacement up to K); each batch
    takes one group from each of ``P = batch_size // num_instances`` random identities
    that still have groups, until fewer than P identities are left.

    The order depends only on ``seed`` and the epoch set with :meth:`set_epoch`, so a
    resumed run sees the same batches as an uninterrupted one.

    Args:
        pids: Person id of each dataset item, ``(N,)``.
        batch_size: Images per batch (a multiple of ``num_instances``).
        num_instances: K, images per identity in a batch.
        seed: Base random seed.
    """

    def __init__(self, pids: Sequence[int], batch_size: int, num_instances: int, seed: int = 0) -> None:
        if num_instances < 1 or batch_size % num_instances:
            raise ValueError(f"batch_size {batch_size} must be a multiple of num_instances {num_instances}")
        self.batch_size, self.num_instances, self.seed = batch_size, num_instances, seed
        self.num_pids_per_batch = batch_size // num_instances
        self.index_dic: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            self.index_dic[int(pid)].append(i)
        self.pids = sorted(self.index_dic)
        if len(self.pids) < self.num_pids_per_batch:
            raise ValueError(f"{len(self.pids)} identities cannot fill batches of {self.num_pids_per_batch} "
                             f"identities x {num_instances} images; lower batch_size or num_instances")
        self.epoch = 0
        self.length = sum(max(len(v), num_instances) // num_instances * num_instances
                          for v in self.index_dic.values())
        self.length -= self.length % batch_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups: dict[int, list[list[int]]] = {}
        for pid in self.pids:
            idxs = np.asarray(self.index_dic[pid])
            if len(idxs) < self.num_instances:
                idxs = rng.choice(idxs, size=self.num_instances, replace=True)
            else:
                idxs = rng.permutation(idxs)
            n = len(idxs) // self.num_instances * self.num_instances
            groups[pid] = [idxs[i:i + self.num_instances].tolist() for i in range(0, n, self.num_instances)]
        available = list(self.pids)
        out: list[int] = []
        while len(available) >= self.num_pids_per_batch:
            chosen = rng.choice(len(available), size=self.num_pids_per_batch, replace=False)
            for j in sorted(chosen.tolist()):
                out.extend(groups[available[j]].pop(0))
            available = [p for p in available if groups[p]]
        return iter(out)

    def __len__(self) -> int:
        return self.length
