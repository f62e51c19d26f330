"""Pure domain code: states, scheduling, request and reply models. `now` is always passed in."""
