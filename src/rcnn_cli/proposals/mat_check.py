"""A structural check of MATLAB v5 ``.mat`` files, before scipy reads them.

``scipy.io.loadmat`` (1.17) looks each data element's type up in a fixed table without a bounds
check, so one corrupt type field makes it read outside the table and the whole process dies of a
segmentation fault instead of raising (found by tests/proposals/test_fuzz_files.py). This walks
the file in the order scipy's reader does (per array: flags, dims, name, then the data elements
its class has, or its nested arrays) and refuses unknown element types, elements that overrun
their container and arrays whose size disagrees with their contents. A file that passes is read
by scipy along the same elements, so a damaged file becomes a one-line error, never a crash.

Element layout (MATLAB's "MAT-File Format"): an 8-byte tag (type, byte count) then the data,
padded to 8 bytes; or a "small data element" with type and count (<= 4) in the first 4 bytes and
the data in the next 4. Files other than v5 (v4, v7.3) are left to scipy, which reads v4 in
Python and refuses v7.3.
"""

from __future__ import annotations

import math
import struct
import zlib

_LEAF_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18}  # int8 ... uint64, utf8/16/32
_MATRIX, _COMPRESSED = 14, 15
_UINT32, _INT32, _INT8, _UTF8 = 6, 5, 1, 16
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE, _FUNCTION = 1, 2, 3, 4, 5, 16
_NUMERIC = set(range(6, 16))  # double, single, int8 ... uint64
_MAX_INFLATED = 1 << 28  # a compressed variable may inflate to 256 MB: proposals are far smaller
_MAX_DEPTH = 32


class MatStructureError(ValueError):
    """The file is not a well-formed MATLAB v5 file; the message says where."""


def check_mat5(data: bytes) -> None:
    """Raise :class:`MatStructureError` if ``data`` (a whole ``.mat`` file) is a v5 file scipy must
    not be given. Non-v5 files pass unchecked."""
    if len(data) < 128 or 0 in data[:4]:
        return  # scipy reads this as MATLAB v4 (or refuses it)
    version = data[124 + (data[126] == ord("I"))]
    if version != 1:
        return  # v7.3 (HDF5) or not a MAT file: scipy refuses it with an exception
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise MatStructureError("v5 header without a byte-order mark")
    if data[116:124].strip(b"\0 "):
        raise MatStructureError("MATLAB objects (subsystem data) are not read")
    _Walker(data, order).variables(128, len(data), inflate=True)


class _Walker:
    def __init__(self, data: bytes, order: str) -> None:
        self.data, self.order = data, order

    def tag(self, pos: int, end: int) -> tuple[int, int, int, int, bool]:
        """(type, byte count, data start, next element, small) of the element at ``pos``."""
        if end - pos < 8:
            raise MatStructureError(f"truncated element at byte {pos}")
        first, second = struct.unpack_from(self.order + "II", self.data, pos)
        if first >> 16:  # small data element
            if first >> 16 > 4:
                raise MatStructureError(f"small element of {first >> 16} bytes at byte {pos}")
            return first & 0xFFFF, first >> 16, pos + 4, pos + 8, True
        if second > end - pos - 8:
            raise MatStructureError(f"element of {second} bytes at byte {pos} overruns its container")
        return first, second, pos + 8, pos + 8 + second, False

    def leaf(self, pos: int, end: int, types: set[int] = _LEAF_TYPES) -> tuple[int, bytes, int]:
        """(type, data, next element) of a data element; full elements are padded to 8 bytes."""
        mdtype, count, start, nxt, small = self.tag(pos, end)
        if mdtype not in types:
            raise MatStructureError(f"data element of type {mdtype} at byte {pos}")
        if not small:
            nxt += -count % 8
            if nxt > end:
                raise MatStructureError(f"padding of the element at byte {pos} overruns its container")
        return mdtype, self.data[start : start + count], nxt

    def ints(self, pos: int, end: int) -> tuple[list[int], int]:
        _, raw, nxt = self.leaf(pos, end, {_INT32, _UINT32})
        values = list(struct.unpack(f"{self.order}{len(raw) // 4}i", raw[: len(raw) // 4 * 4]))
        if len(values) > 32 or any(v < 0 for v in values):
            raise MatStructureError(f"bad dimensions {values[:8]} at byte {pos}")
        return values, nxt

    def variables(self, pos: int, end: int, inflate: bool) -> None:
        while pos < end:
            mdtype, _, start, nxt, small = self.tag(pos, end)
            if mdtype == _COMPRESSED and inflate and not small:
                inflated = _inflate(self.data[start:nxt], pos)
                _Walker(inflated, self.order).variables(0, len(inflated), inflate=False)
            else:
                self.array(pos, end, 0)
            pos = nxt

    def array(self, pos: int, end: int, depth: int) -> int:
        """Check the array element at ``pos``; returns where the next element starts."""
        mdtype, count, start, nxt, small = self.tag(pos, end)
        if mdtype != _MATRIX or small:
            raise MatStructureError(f"expected an array at byte {pos}, found type {mdtype}")
        if depth > _MAX_DEPTH:
            raise MatStructureError(f"arrays nested more than {_MAX_DEPTH} deep")
        if count == 0:
            return nxt  # an empty array
        _, flags, p = self.leaf(start, nxt, {_UINT32})
        if len(flags) != 8:
            raise MatStructureError(f"array flags of {len(flags)} bytes at byte {start}")
        word = struct.unpack_from(self.order + "I", flags)[0]
        kind, is_complex = word & 0xFF, bool(word >> 11 & 1)
        if kind not in _NUMERIC | {_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE, _FUNCTION}:
            raise MatStructureError(f"array of class {kind} at byte {pos}")
        dims, p = self.ints(p, nxt)
        if len(dims) < 2:  # MATLAB writes at least 2; scipy crashes on a char array with none
            raise MatStructureError(f"array of {len(dims)} dimensions at byte {pos}")
        p = self.leaf(p, nxt, {_INT8, _UTF8})[2]  # the name
        elements = math.prod(dims)
        if kind in _NUMERIC | {_CHAR, _SPARSE}:
            parts = (3 if kind == _SPARSE else 1) + (is_complex and kind != _CHAR)
            for _ in range(parts):
                p = self.leaf(p, nxt)[2]
            return self._filled(p, nxt, pos)
        if kind == _OBJECT:
            p = self.leaf(p, nxt, {_INT8, _UTF8})[2]  # the class name
        nested = 1
        if kind in (_STRUCT, _OBJECT):
            if self.tag(p, nxt)[1] != 4:
                raise MatStructureError(f"struct field-name length at byte {p} is not one integer")
            (length,), p = self.ints(p, nxt)
            _, names, p = self.leaf(p, nxt, {_INT8, _UTF8})
            if length == 0:
                raise MatStructureError(f"struct field names of length 0 at byte {pos}")
            nested = elements * (len(names) // length)
        elif kind == _CELL:
            nested = elements
        if nested * 8 > nxt - p:
            raise MatStructureError(f"array at byte {pos} claims {nested} parts in {nxt - p} bytes")
        for _ in range(nested):
            p = self.array(p, nxt, depth + 1)
        return self._filled(p, nxt, pos)

    @staticmethod
    def _filled(pos: int, end: int, start: int) -> int:
        if pos != end:
            raise MatStructureError(f"array at byte {start} holds {end - pos} bytes besides its contents")
        return end


def _inflate(compressed: bytes, pos: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(compressed, _MAX_INFLATED)
    except zlib.error as exc:
        raise MatStructureError(f"compressed variable at byte {pos}: {exc}") from None
    if inflater.unconsumed_tail:
        raise MatStructureError(f"compressed variable at byte {pos} inflates past {_MAX_INFLATED} bytes")
    return inflated
