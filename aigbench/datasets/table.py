"""A sample list stored as a few numpy arrays instead of a Python list of tuples.

With forked loader workers, every Python object a worker reads gets its reference count
written, which copies the memory page it sits on: a list of a million ``Sample`` tuples is
slowly copied into every worker. :class:`SampleTable` keeps the same data in flat arrays
(UTF-8 bytes with offsets for the strings, codes into a small table for generators and
categories, int8 labels) that workers only read. It behaves as a sequence of ``Sample``.
"""

from __future__ import annotations

from typing import Iterator, Sequence, Union, overload

import numpy as np

from aigbench.datasets.layouts import Sample


class _Strings:
    """Many strings in one UTF-8 byte buffer with offsets."""

    def __init__(self, values: Sequence[str]) -> None:
        encoded = [v.encode("utf-8") for v in values]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.data = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)

    def __getitem__(self, i: int) -> str:
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode("utf-8")

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.offsets.nbytes)


def _codes(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    names, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int32), [str(n) for n in names]


class SampleTable(Sequence[Sample]):
    """An immutable sequence of :class:`~aigbench.datasets.layouts.Sample` in numpy arrays."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        samples = list(samples)
        self._paths = _Strings([s.path for s in samples])
        self.labels = np.fromiter((s.label for s in samples), dtype=np.int8, count=len(samples))
        self._gen, self._gen_names = _codes([s.generator for s in samples]) if samples else (np.zeros(0, np.int32), [])
        self._cat, self._cat_names = _codes([s.category for s in samples]) if samples else (np.zeros(0, np.int32), [])
        self._split, self._split_names = _codes([s.split for s in samples]) if samples else (np.zeros(0, np.int32), [])

    @classmethod
    def of(cls, samples: Union[SampleTable, Sequence[Sample]]) -> SampleTable:
        return samples if isinstance(samples, SampleTable) else cls(samples)

    def __len__(self) -> int:
        return len(self.labels)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Sample, list[Sample]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range ({len(self)})")
        return Sample(
            self._paths[i],
            int(self.labels[i]),
            self._gen_names[self._gen[i]],
            self._cat_names[self._cat[i]],
            self._split_names[self._split[i]],
        )

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def path(self, i: int) -> str:
        return self._paths[i]

    @property
    def generators(self) -> np.ndarray:
        """The generator of every sample (an object array), without building ``Sample`` tuples."""
        return np.asarray(self._gen_names, dtype=object)[self._gen] if len(self) else np.zeros(0, dtype=object)

    @property
    def nbytes(self) -> int:
        return int(self._paths.nbytes + self.labels.nbytes + self._gen.nbytes + self._cat.nbytes + self._split.nbytes)
