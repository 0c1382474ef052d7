"""Releases: deciding whether a tree may go live and putting it there.

- `gate`: the one release gate. Every path that can make a tree live or give it a green check runs it
  (its docstring has the table of steps per purpose; docs/architecture.md has every path);
- `candidate`: a commit becomes a candidate: exported, put through the gate, recorded (sync and deploy);
- `rollout`: where a release that passed goes: its first promotion stage, or live;
- `golive`: the link swap and its record (dag_id clashes resolved, old releases pruned, deploy log);
- `pins`: the one rule for pins, applied by `golive` (a pin names the release that stays live);
- `promotion`: staged rollouts (soak in a stage, promote on good DAG runs); `stages`: their names and rules;
- `rollback`: rollback, pin and unpin; `versions`: deploy of an exact commit;
- `history`: reading releases and the deploy log from the store (what faces show; nothing heavy imported);
- `tests` and `tests_runner`: a repository's own tests as a gate, each module in the sandbox;
- `environments`: isolated virtual environments per namespace; `diff`: what changed between two releases.
"""
