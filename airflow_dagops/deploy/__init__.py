"""Releases (immutable exported trees), atomic publish of namespace links, locks and pruning."""
