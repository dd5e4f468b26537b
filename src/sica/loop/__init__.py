"""The self-improvement loop: `improve` runs it; an `iteration` is plan → `meta_step` → `checks` (`validation`,
`smoke`) → staged `evaluation`; `budget`, `accounts` and `run_state` keep what a resumed run carries on; `utility`
and `policies` choose who edits what."""
