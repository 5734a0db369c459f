"""Chat internals: attachments and bridging, conversation state with context fitting and
KV-prefix checks, the session, /commands, transcripts, speech, and the REPL.

Layout: ``attachments`` (read, sniff, hash, cap) -> ``bridge`` (caption / transcribe via
``mmcli.api``, cached per hash) -> ``conversation`` (messages, ``fit``, ``PrefixCheck``) ->
``session`` (one engine, one record per turn) -> ``driver`` (/commands) -> ``modes`` (one-shot,
scripted) / ``repl`` (prompt_toolkit + Rich); ``entry.run_chat`` picks the mode.
"""
