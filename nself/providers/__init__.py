"""Cloud providers: one small driver per provider behind one contract (see base.py)."""
