"""Retention: finished jobs past their age are deleted, and their stored outputs first, so
no object outlives its row; an object that cannot be deleted keeps its job for the next
round."""

from __future__ import annotations

import logging
from datetime import datetime

from service.store import Store
from service.store.objects import Objects

log = logging.getLogger("service.retention")


async def prune(
    store: Store, objects: Objects | None, completed_before: datetime, batch_size: int = 1000
) -> int | None:
    """Delete the stored outputs of finished jobs completed before the cutoff, then the
    jobs (their events, outputs' rows and archive with them). Returns how many jobs, or
    None when another replica is pruning."""
    if objects is not None:
        while True:
            stored = await store.archives.stored_of_finished(completed_before, batch_size)
            if not stored:
                break
            gone = []
            for output in stored:
                assert output.object_key is not None
                try:  # from the store that holds it (an earlier OUTPUT_STORE's, it may be)
                    await objects.holding(output.store).delete(output.object_key)
                except Exception as exc:  # kept, with its job, for the next round
                    log.warning("could not delete %s: %s", output.object_key, exc)
                    continue
                gone.append(output)
            await store.archives.forget_stored(gone)
            if len(gone) < len(stored):
                break
    return await store.jobs.prune(
        completed_before, batch_size=batch_size, keep_stored=objects is not None
    )
