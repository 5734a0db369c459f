"""A fake engine and task, registered like the real ones (engines.register, tasks.register)."""
