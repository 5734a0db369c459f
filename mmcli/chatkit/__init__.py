"""Chat internals: attachments and bridging, conversation state with context fitting and
KV-prefix checks, the session, /commands, transcripts, speech, and the REPL.

Layout: ``records`` (chat's ``Options``, ``ChatRecord``, ``Usage``, ``AttachmentInfo``; every
module here takes them from there) and ``attachments`` (read, sniff, hash, cap) -> ``bridge``
(caption / transcribe via ``mmcli.api``, cached per hash) -> ``conversation`` (messages,
``fit``, ``PrefixCheck``) -> ``session`` (one engine, one record per turn; the engine's
``mmcli.events`` are told apart by type) -> ``driver`` (/commands, with ``transcript`` for
/save and /load and ``speak`` for /speak) -> ``modes`` (one-shot, scripted) / ``repl``
(prompt_toolkit + Rich); ``entry.run_chat`` picks the mode. ``mmcli.tasks.chat`` adapts the
session to the task contract; nothing here imports it.
"""
