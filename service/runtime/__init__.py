"""What the API and the workers share, built once per process by the composition root
(`service.app`) and handed to both: `services.Runtime` (settings, clock, store, provider,
object store, secrets), `polling` (poll one claimed job now: the sweeper's and a refresh's),
and `watchers` (waiting on jobs in this process). Neither the API nor the workers import
each other; both import this."""
