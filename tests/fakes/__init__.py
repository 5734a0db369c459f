"""A fake engine and task, registered exactly like the real ones (engines.register, TASK_MODULES)."""
