"""The controller: performs what the lifecycle decides.

- `runtime`: the worker pool (one level-triggered worker per live resource, a bound on
  concurrent steps, wake-ups, graceful shutdown); `worker`: what is remembered per resource.
- `step`: one step, dispatched from a table keyed by `lifecycle.Step`, with the error policy;
  `step_context`: what a step works with.
- One module per step family: `credentials_step`, `slot_step`, `build_step`, `submission_step`,
  `cancel_step` (cancel, deletion, manual retry, tidying).
- `commit`: carrying out a Transition (the status write, Events, effects, finalizer and label).
- `secrets`: credentials read and validated (cached per Secret version); `restore`: limiter state at
  start-up; `retention`: history limits and TTL; `context`: the injected dependencies.
"""
