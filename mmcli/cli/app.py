"""The Typer app: global options, subcommand registration, and the one error path.

Command modules are imported here (they are thin and never import an engine), so
``mmcli --help`` stays as fast as Typer itself.
"""

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from mmcli import __version__, console
from mmcli.errors import ExitCode, MmcliError
from mmcli.settings import DEVICES, Settings

# Global options and whether each takes a value: accepted after the command too
# (`mmcli transcribe --offline a.mp3`), as users of llm and ollama type them.
GLOBAL_OPTIONS = {"--models": True, "--offline": False, "--device": True, "--threads": True,
                  "--quiet": False, "-q": False, "--verbose": False, "-v": False,
                  "--debug": False}


class MmcliGroup(TyperGroup):
    """Turns MmcliError into a one-line message + hint + exit code: the only place that does."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(self, ctx, args))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:  # a bad global option or an unknown command
            _usage_exit(exc)

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        previous = _on_sigterm(_terminate)
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # Click's own (bad value, missing argument…): our style
            _usage_exit(exc)
        except MmcliError as exc:
            if _debug(ctx):
                import traceback

                traceback.print_exc()
            console.error(exc.message, exc.hint)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            console.error("interrupted")
            sys.exit(int(ExitCode.INTERRUPTED))
        except BrokenPipeError:
            # `mmcli … | head`: the reader left. No traceback and no error line; point stdout
            # at /dev/null so the interpreter's final flush does not fail again. Finished
            # inputs are journaled; exit like a process killed by SIGPIPE would.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(int(ExitCode.BROKEN_PIPE))
        except BaseException as exc:
            batch = sys.modules.get("mmcli.batch")  # not imported: no batch ran to terminate
            if batch is not None and isinstance(exc, batch.Terminated):
                console.error("terminated")
                sys.exit(int(ExitCode.TERMINATED))
            raise
        finally:
            # Every output is written and journaled by now: a late SIGTERM must not turn a
            # finished run into a signal death (or interrupt llama.cpp's close()).
            _on_sigterm(signal.SIG_IGN)
            engines = sys.modules.get("mmcli.engines")  # not imported: nothing was loaded
            if engines is not None:
                engines.close_all()
            if not _PROCESS:
                _on_sigterm(previous)  # in-process use (tests, library): leave signals as found


MODELS_VERBS = ("list", "pull", "path", "verify", "rm", "show")


def _usage_exit(exc: UsageError) -> None:
    """Click's usage errors in mmcli's one style: ``mmcli: error: …`` + a hint, exit 2."""
    message = exc.format_message()
    path = exc.ctx.command_path if exc.ctx is not None else "mmcli"
    hint = f"see `{path} --help`"
    if message.startswith("No such command"):
        name = message.split("'")[1] if "'" in message else ""
        message = f"unknown command '{name}'"
        hint = (f"did you mean `mmcli models {name}`?" if name in MODELS_VERBS
                else "see `mmcli --help` for the commands")
    console.error(message[0].lower() + message[1:] if message else "usage error", hint)
    sys.exit(int(ExitCode.USAGE))


def hoist_globals(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Move global options written after the command to before it, unless the command has an
    option of the same name (``vqa -q`` is its question, not ``--quiet``)."""
    names = list(group.list_commands(ctx))
    at = next((i for i, a in enumerate(args) if a in names), None)
    if at is None:
        return args
    own = _option_names(group.get_command(ctx, args[at]), ctx)
    before, after, moved = args[:at + 1], args[at + 1:], []
    rest: list[str] = []
    i = 0
    while i < len(after):
        token = after[i]
        if token == "--":
            rest.extend(after[i:])
            break
        flag = token.split("=", 1)[0]
        if flag in GLOBAL_OPTIONS and flag not in own:
            takes = GLOBAL_OPTIONS[flag] and "=" not in token
            moved.extend(after[i:i + 1 + takes])
            i += 1 + takes
            continue
        rest.append(token)
        i += 1
    return args[:at] + moved + before[at:] + rest


def _option_names(command: Any, ctx: Any) -> set[str]:
    """Every option name of ``command`` and, for a group, of its subcommands."""
    found: set[str] = set()
    for param in getattr(command, "params", []):
        found.update(getattr(param, "opts", []))
        found.update(getattr(param, "secondary_opts", []))
    for name in getattr(command, "list_commands", lambda c: [])(ctx):
        found |= _option_names(command.get_command(ctx, name), ctx)
    return found


# True in the console script: the process ends after one command, so SIGTERM stays ignored
# through interpreter shutdown instead of being restored to "die with -15".
_PROCESS = False


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM while a command runs: unwind like Ctrl-C (batch summary, exit 143)."""
    from mmcli.batch import Terminated

    raise Terminated()


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler; returns the previous one (None off the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals to the host program
        return None


def _debug(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False))


def _new_app() -> typer.Typer:
    """The Typer app with its global options, before any command is added."""
    new = typer.Typer(
        cls=MmcliGroup,
        name="mmcli",
        help="Run multimodal models locally: caption, vqa, transcribe, speak, segment, chat.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain click help: Rich's help renderer costs ~60 ms of imports on every --help.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    new.callback()(main)
    return new


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mmcli {__version__}")
        raise typer.Exit()


def main(
    ctx: typer.Context,
    models: Annotated[Optional[Path], typer.Option(
        "--models", help="Extra manifest layered over the others (wins by model name).",
        dir_okay=False)] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Local files only; never download (also HF_HUB_OFFLINE=1).")] = False,
    device: Annotated[str, typer.Option(
        "--device", help="auto | cpu | cuda | metal.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, help="CPU threads for the engines (default: engine's choice).")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress or notices.")] = False,
    verbose: Annotated[bool, typer.Option(
        "-v", "--verbose", help="Show engine logs (llama.cpp, onnxruntime…).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = None,
) -> None:
    """Global options go before or after the command: `mmcli --offline transcribe a.mp3`."""
    if device not in DEVICES:
        raise typer.BadParameter(f"must be one of {', '.join(DEVICES)}", param_hint="--device")
    ctx.obj = Settings.from_env(models_file=models, device=device, threads=threads, quiet=quiet,
                                verbose=verbose, debug=debug)
    if offline:
        ctx.obj.offline = True


# A task command's module registers it (and its sibling); a run of that command builds only
# those: the other command modules and their click commands would cost every run ~10-20 ms.
TASK_MODULES = {"caption": "vision", "vqa": "vision", "transcribe": "speech",
                "speak": "speech", "segment": "segment", "chat": "chat"}


def _register(target: typer.Typer) -> None:
    from mmcli.cli import doctor, models_cmd, tasks

    target.add_typer(models_cmd.app, name="models")
    target.command("doctor")(doctor.doctor)
    tasks.register(target)


def __getattr__(name: str) -> typer.Typer:
    """``app``: every command (``--help``, tests, library use), built on first use."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    full = _new_app()
    _register(full)
    globals()["app"] = full
    return full


def command_of(args: list[str]) -> str | None:
    """The command word of a command line (global options and their values skipped)."""
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token == "-":
            return token
        flag = token.split("=", 1)[0]
        if flag not in GLOBAL_OPTIONS:
            return None  # --help, --version, a typo: the full app answers
        i += 1 + (GLOBAL_OPTIONS[flag] and "=" not in token)
    return None


def run() -> None:
    """Console-script entry point."""
    global _PROCESS
    _PROCESS = True
    name = command_of(sys.argv[1:])
    if name in TASK_MODULES:
        import importlib

        only = _new_app()
        importlib.import_module(f"mmcli.cli.{TASK_MODULES[name]}").register(only)
        only(prog_name="mmcli")
    else:
        __getattr__("app")(prog_name="mmcli")
