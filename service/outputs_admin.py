"""`outpaint-jobs outputs verify|migrate`: every kept output read again from the store that
holds it and checked against its record, and outputs kept in earlier output stores copied
into the current OUTPUT_STORE, each checked by its SHA-256 before its record moves."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from service.store import Store
from service.store.archives import StoredOutput
from service.store.objects import Objects, describe

log = logging.getLogger("service.outputs")
PAGE = 200


@dataclass
class Report:
    checked: int = 0  # outputs read (verify) or copied (migrate)
    problems: list[str] = field(default_factory=list)


def _mismatch(output: StoredOutput, data: bytes) -> str | None:
    digest = hashlib.sha256(data).hexdigest()
    if digest == output.sha256 and len(data) == output.bytes:
        return None
    return (
        f"mismatch {output.object_key}: sha256 {digest}, {len(data)} bytes; "
        f"recorded {output.sha256}, {output.bytes} bytes"
    )


async def verify(store: Store, objects: Objects) -> Report:
    """Read every stored output from its store and compare its SHA-256 and size."""
    report, after = Report(), None
    while page := await store.archives.stored_outputs(after, PAGE):
        for output in page:
            assert output.object_key is not None
            report.checked += 1
            try:
                data = await objects.holding(output.store).read(output.object_key)
            except FileNotFoundError:
                report.problems.append(f"missing  {output.object_key}")
                continue
            problem = _mismatch(output, data)
            if problem:
                report.problems.append(problem)
        after = (page[-1].job_id, page[-1].n)
    return report


async def migrate(store: Store, objects: Objects) -> Report:
    """Copy every output another store holds into `objects`: read it there, check it
    against its record, write it here with its type and checksum, read it back, and only
    then record it as kept here. What cannot be read or does not match stays where it is,
    listed; the earlier copies are left in place (delete them once you are satisfied)."""
    report, after = Report(), None
    while page := await store.archives.outputs_elsewhere(objects.name, after, PAGE):
        for output in page:
            assert output.object_key is not None and output.sha256 is not None
            source = objects.holding(output.store)
            try:
                data = await source.read(output.object_key)
            except Exception as exc:
                report.problems.append(
                    f"unreadable {output.store} {output.object_key}: {describe(exc)}"
                )
                continue
            problem = _mismatch(output, data)
            if problem:
                report.problems.append(f"{problem} (in {output.store})")
                continue
            await objects.put(
                output.object_key, data, content_type=output.content_type, sha256=output.sha256
            )
            problem = _mismatch(output, await objects.read(output.object_key))
            if problem:
                report.problems.append(f"{problem} (written to {objects.name})")
                continue
            if await store.archives.moved(output, objects.name):
                report.checked += 1
        after = (page[-1].job_id, page[-1].n)
    return report


async def warn_if_elsewhere(store: Store, objects: Objects) -> None:
    """At start: say how many kept outputs other stores hold (counters, not a scan)."""
    try:
        elsewhere = await store.archives.held_elsewhere(objects.name)
    except Exception as exc:  # the database away at start: readiness says so
        log.debug("could not count outputs kept elsewhere: %s", type(exc).__name__)
        return
    if elsewhere:
        where = ", ".join(f"{n} in {name}" for name, n in elsewhere.items())
        log.warning(
            "%d kept outputs are in other output stores than OUTPUT_STORE %s (%s): they are "
            "read from there while those answer; copy them here with "
            "`outpaint-jobs outputs migrate`",
            sum(elsewhere.values()),
            objects.name,
            where,
        )
