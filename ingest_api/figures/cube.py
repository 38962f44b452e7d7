"""Month-shaped rows in memory: exact person sets per program that union exactly.

The figures engine (engine.py) counts from *slabs*: the month × program × person rows of one
month (and, from the rollup, one facility) as numpy columns, with each person's attributes
(city-wide person, gender, neighbourhood, birth month or age band, enrolment fee type) joined
once at load. A slab answers a *marginal* on demand: for each program and each combination of
the person dimensions asked for, a roaring bitmap of the persons (pyroaring), the days and
attendances added up and the day masks OR-ed. Bitmaps union exactly, sums add and masks OR, so
any grouping of any whole months is merged from the marginals without double counting — and
without estimating anything.

Rollup slabs are cached per process (`cached_slabs`): a slab is reloaded only when the
generation the rollup refresh gave its (facility, month) changes (migration 0040), so closed
months are read once and a GET only asks the database for the generations. Slabs of the raw
rows and of spans of days are built per request and dropped.
"""

from __future__ import annotations

import array
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, LiteralString

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from pyroaring import BitMap

from broker.vocabulary import AGE_BANDS
from ingest_api.figures.const import UNKNOWN

PERSON_DIMS: Final = ("gender", "age_band", "neighbourhood", "fee_type")
# Lower age limits of AGE_BANDS after the first (the same bands as figures_age_band()).
_BAND_LIMITS: Final = np.array([10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85], dtype=np.int32)
_BAND_NAMES: Final = AGE_BANDS
_MAX_CACHES: Final = 8  # databases one process keeps cubes of (tests open many)

IntArray = npt.NDArray[np.int64]

# The person attributes of month-shaped rows: one join, the same for every source.
_ATTRIBUTES: Final[LiteralString] = """
SELECT {group_cols}, r.program_id, coalesce(pe.person_id, r.person_ref) AS person_key,
       r.days, r.attendances, r.day_mask,
       coalesce(pe.gender, 'unknown'), coalesce(pe.neighbourhood, 'unknown'),
       coalesce(extract(year FROM pe.birth_month)::integer, -1),
       coalesce((extract(month FROM pe.birth_month) * 100
                 + extract(day FROM pe.birth_month))::integer, 0),
       pe.age_band, en.fee_type
FROM ({rows}) AS r
LEFT JOIN figures_persons AS pe ON pe.person_ref = r.person_ref
LEFT JOIN enrolments AS en ON en.member_ref = r.person_ref AND en.program_id = r.program_id
"""


class Codes:
    """Dense integer codes of strings (person keys, program ids, attribute values)."""

    def __init__(self) -> None:
        """Empty; code 0 is the first string seen."""
        self.index: dict[str | None, int] = {}
        self.values: list[str | None] = []

    def code(self, value: str | None) -> int:
        """The code of `value`, assigned on first sight."""
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found

    def codes(self, values: Iterable[str | None]) -> IntArray:
        """The codes of many values."""
        index = self.index
        out = []
        for v in values:
            c = index.get(v)
            if c is None:
                c = self.code(v)
            out.append(c)
        return np.array(out, dtype=np.int64)


@dataclass
class Dictionary:
    """The codes shared by the slabs of one cube (so their marginals can be merged)."""

    persons: Codes = field(default_factory=Codes)
    programs: Codes = field(default_factory=Codes)
    values: Codes = field(default_factory=Codes)  # genders, neighbourhoods, bands, fee types

    def __post_init__(self) -> None:
        """Fixed codes for the values the engine computes itself."""
        for name in (UNKNOWN, None, *_BAND_NAMES):
            self.values.code(name)
        self.band_codes = np.array([self.values.code(b) for b in _BAND_NAMES], dtype=np.int64)
        self.unknown = self.values.code(UNKNOWN)
        self.none = self.values.code(None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One program and one combination of person-dimension values within a slab."""

    program: int
    values: tuple[int, ...]
    persons: BitMap
    days: int
    attendances: int
    mask: int


class Slab:
    """The month × program × person rows of one month (of one facility, or of one period)."""

    def __init__(
        self, *, month: date, columns: dict[str, IntArray], dictionary: Dictionary
    ) -> None:
        """Rows as equal-length integer columns (see `load_rows`)."""
        self.month = month
        self.columns = columns
        self.dictionary = dictionary
        self.programs = frozenset(int(p) for p in np.unique(columns["program"]))
        self._marginals: dict[tuple[tuple[str, ...], date | None], list[Entry]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.columns["program"])

    def _codes(self, dim: str, as_of: date | None) -> IntArray:
        """The value codes of one person dimension for every row."""
        c = self.columns
        if dim == "gender":
            return c["gender"]
        if dim == "neighbourhood":
            return c["hood"]
        if dim == "fee_type":
            return c["fee"]  # the enrolment's override; None means the program's own
        assert as_of is not None
        # Age in full years on `as_of` (만 나이), as figures_age_band() counts it.
        age = as_of.year - c["birth_year"] - ((as_of.month * 100 + as_of.day) < c["birth_md"])
        computed = self.dictionary.band_codes[np.searchsorted(_BAND_LIMITS, age, side="right")]
        fixed = c["band"]
        return np.where(
            fixed != self.dictionary.none,
            fixed,
            np.where(c["birth_year"] >= 0, computed, self.dictionary.unknown),
        )

    def marginal(self, dims: tuple[str, ...], as_of: date | None) -> list[Entry]:
        """Per program and combination of `dims` values: persons, days, attendances, mask."""
        key = (dims, as_of if "age_band" in dims else None)
        found = self._marginals.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._marginals.get(key)
            if found is None:
                found = self._marginals[key] = self._build(dims, key[1])
        return found

    def _build(self, dims: tuple[str, ...], as_of: date | None) -> list[Entry]:
        """Group the rows by program and `dims` (numpy), one bitmap per group."""
        c = self.columns
        if not len(self):
            return []
        parts = [c["program"], *(self._codes(d, as_of) for d in dims)]
        combined = np.zeros(len(self), dtype=np.int64)
        for part in parts:
            combined = combined * (int(part.max()) + 1) + part
        order = np.argsort(combined, kind="stable")
        ordered = combined[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        days = np.add.reduceat(c["days"][order], starts)
        attendances = np.add.reduceat(c["attendances"][order], starts)
        masks = np.bitwise_or.reduceat(c["mask"][order], starts)
        persons = c["person"][order].astype(np.uint32)
        ends = [*starts[1:].tolist(), len(order)]
        heads = order[starts]
        part_heads = [p[heads].tolist() for p in parts]
        entries = []
        for i, (start, end) in enumerate(zip(starts.tolist(), ends, strict=True)):
            entries.append(
                Entry(
                    program=part_heads[0][i],
                    values=tuple(p[i] for p in part_heads[1:]),
                    persons=BitMap(array.array("I", persons[start:end].tobytes())),
                    days=int(days[i]),
                    attendances=int(attendances[i]),
                    mask=int(masks[i]),
                )
            )
        return entries


def load_rows(
    conn: psycopg.Connection[Any],
    *,
    rows: sql.Composable,
    group_cols: Sequence[str],
    params: dict[str, Any],
    dictionary: Dictionary,
) -> dict[tuple[Any, ...], Slab]:
    """Slabs of month-shaped rows (`rows` has facility_id, month, program_id, person_ref, days,
    attendances, day_mask), one per value of `group_cols` (the last of which is the month)."""
    query = sql.SQL(_ATTRIBUTES).format(
        group_cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in group_cols),
        rows=rows,
    )
    width = len(group_cols)
    grouped: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    with conn.cursor(binary=True) as cur:
        for row in cur.execute(query, params):
            grouped.setdefault(tuple(row[:width]), []).append(row[width:])
    slabs = {}
    for key, found in grouped.items():
        (program, person, days, attendances, mask, gender, hood, year, md, band, fee) = zip(
            *found, strict=True
        )
        values = dictionary.values
        columns = {
            "program": dictionary.programs.codes(program),
            "person": dictionary.persons.codes(person),
            "days": np.array(days, dtype=np.int64),
            "attendances": np.array(attendances, dtype=np.int64),
            "mask": np.array(mask, dtype=np.int64) & 0xFFFFFFFF,
            "gender": values.codes(gender),
            "hood": values.codes(hood),
            "birth_year": np.array(year, dtype=np.int64),
            "birth_md": np.array(md, dtype=np.int64),
            "band": values.codes(band),
            "fee": values.codes(fee),
        }
        slabs[key] = Slab(month=key[-1], columns=columns, dictionary=dictionary)
    return slabs


@dataclass
class Cube:
    """One database's cached rollup slabs, by (facility, month), with their generations."""

    epoch: str
    dictionary: Dictionary = field(default_factory=Dictionary)
    slabs: dict[tuple[str, date], tuple[int, Slab]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_CUBES: OrderedDict[str, Cube] = OrderedDict()
_CUBES_LOCK = threading.Lock()

_GENERATIONS: Final[LiteralString] = """
SELECT e.epoch::text, g.facility_id, g.month, g.generation
FROM figures_epoch AS e
LEFT JOIN figures_month_generation AS g ON g.month BETWEEN %(lo)s AND %(hi)s
"""
_ROLLUP_ROWS: Final[LiteralString] = """
SELECT m.* FROM figures_member_month AS m
JOIN unnest(%(facilities)s::text[], %(months)s::date[]) AS w(facility_id, month)
  ON m.facility_id = w.facility_id AND m.month = w.month
"""


def cached_slabs(
    conn: psycopg.Connection[Any], *, first_month: date, last_month: date
) -> tuple[Dictionary, dict[date, list[Slab]]]:
    """The rollup's slabs of the months from `first_month` to `last_month`, by month.

    Reads only the generations when nothing changed; reloads the (facility, month)s whose
    generation changed since this process loaded them. Never writes.
    """
    found = conn.execute(_GENERATIONS, {"lo": first_month, "hi": last_month}).fetchall()
    epoch = str(found[0][0])
    wanted = {(str(r[1]), r[2]): int(r[3]) for r in found if r[1] is not None}
    with _CUBES_LOCK:
        cube = _CUBES.get(epoch)
        if cube is None:
            cube = _CUBES[epoch] = Cube(epoch=epoch)
            while len(_CUBES) > _MAX_CACHES:
                _CUBES.popitem(last=False)
        _CUBES.move_to_end(epoch)
    with cube.lock:
        stale = [k for k, g in wanted.items() if k not in cube.slabs or cube.slabs[k][0] != g]
        for key in [k for k in cube.slabs if first_month <= k[1] <= last_month]:
            if key not in wanted:
                del cube.slabs[key]  # the generation table never loses months, but be exact
        if stale:
            loaded = load_rows(
                conn,
                rows=sql.SQL(_ROLLUP_ROWS),
                group_cols=("facility_id", "month"),
                params={
                    "facilities": [k[0] for k in stale],
                    "months": [k[1] for k in stale],
                },
                dictionary=cube.dictionary,
            )
            empty = {k: np.zeros(0, dtype=np.int64) for k in _COLUMNS}
            for key in stale:
                slab = loaded.get(key) or Slab(
                    month=key[1], columns=dict(empty), dictionary=cube.dictionary
                )
                cube.slabs[key] = (wanted[key], slab)
        by_month: dict[date, list[Slab]] = {}
        for key in sorted(wanted):
            by_month.setdefault(key[1], []).append(cube.slabs[key][1])
    return cube.dictionary, by_month


_COLUMNS: Final = (
    "program",
    "person",
    "days",
    "attendances",
    "mask",
    "gender",
    "hood",
    "birth_year",
    "birth_md",
    "band",
    "fee",
)


def warm(
    conn: psycopg.Connection[Any],
    *,
    first_month: date,
    last_month: date,
    dims: Sequence[tuple[str, ...]] = ((), ("gender",), ("fee_type",)),
) -> int:
    """Load the slabs of these months and build the marginals the reports ask for, so a
    question finds them ready (the service's refresher calls this after each refresh).

    Returns the number of slabs; reads only, like any question."""
    _, by_month = cached_slabs(conn, first_month=first_month, last_month=last_month)
    count = 0
    for slabs in by_month.values():
        for slab in slabs:
            for wanted in dims:
                slab.marginal(wanted, None)
            count += 1
    return count


def forget_all() -> None:
    """Drop every cached cube (tests that measure a cold start)."""
    with _CUBES_LOCK:
        _CUBES.clear()
