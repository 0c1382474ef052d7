"""The one rule for pins. `go_live` (releases/golive.py) applies it on every path that puts a release live in prod,
and pin/unpin (releases/rollback.py) set and clear it, so no face can move what is live around it.

**A pin names the release that stays live.** While a repository is pinned, the release it is pinned to *is* its
live release. Every face reads both from the repository's two columns (`live_release_id`, `pinned_release_id`:
store/views.py), so the page's header and releases table, `dagops versions`, `dagops repos show` and the REST
repository always tell the same story.

- **By hand** (rollback, deploy of a version, pin to a release; from any face or the dagops_deploy system DAG):
  the chosen release goes live and, on a pinned repository, **the pin moves to it**: the repository stays pinned,
  on what was just made live. An operator who picked a release does not expect the next push to undo it without
  saying so; `unpin` says so. Asking for a pin (`--pin`, `"pin": true`; a deploy always asks, or the next poll
  would put the branch head back) pins an unpinned repository as well.
- **Automatically** (a sync publishing a new commit, a release whose deferred tests passed, a promotion reaching
  prod): never while the repository is pinned. A sync of a pinned repository does not fetch at all
  (sync/sync.py); a release that passed its checks while a pin was set meanwhile stays `validated`, unpublished
  (releases/rollout.py); a promotion to prod is refused until the repository is unpinned (releases/promotion.py).
- **Unpin**: the repository follows its branch again; the next sync publishes the branch head if it passes the
  gate.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from airflow_dagops.errors import Conflict
from airflow_dagops.store.models import Release, Repository


def read_pin(session: Session, repo: Repository) -> int | None:
    """The repository's pin as committed now, its row locked until this transaction ends (PostgreSQL; SQLite
    serializes writers anyway): a pin set while a sync validated is seen, and no pin lands between this check
    and the move it guards."""
    session.flush()  # keep what the caller changed on the row: the refresh below reloads only the pin
    session.refresh(repo, attribute_names=["pinned_release_id"], with_for_update=True)
    return repo.pinned_release_id


def held_by_pin(repo: Repository, release: Release) -> str | None:
    """Why an automatic move (sync, tests passed, promotion) may not put `release` live: the repository is
    pinned to another release. None when it may."""
    pinned = repo.pinned_release_id
    if pinned is None or pinned == release.id:
        return None
    return (
        f"{repo.name} is pinned to release {pinned}, which stays live: release {release.id} "
        f"({release.commit_sha[:12]}) is not published (`dagops unpin {repo.name}` publishes the branch head at "
        "the next sync)"
    )


def apply_pin_rule(session: Session, repo: Repository, release: Release, *, by_hand: bool, pin: bool) -> None:
    """Before `release` goes live. By hand (`pin` implies it): the pin moves to it when the repository is pinned
    or a pin is asked for. Automatically: a pin on another release refuses the move (Conflict), nothing changes."""
    pinned = read_pin(session, repo)
    if by_hand or pin:
        if pin or pinned is not None:
            repo.pinned_release_id = release.id
        return
    why = held_by_pin(repo, release)
    if why is not None:
        raise Conflict(why, details={"pinned_release_id": pinned, "release_id": release.id})
