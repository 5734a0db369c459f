"""Real vision models, opt-in: ``MMCLI_REALMODELS=1 python -m pytest -m realmodels``.

Each model (``smolvlm-256m``, plus any named in ``MMCLI_REALMODELS_LIST``, comma separated)
is taken from the real Hugging Face cache, pulled there first when ``MMCLI_REALMODELS=1``
(``mmcli models pull``), then captions ``tests/media/newspaper.jpg`` (the caption must mention
a newspaper or its text) and answers a two-turn chat about it whose second turn reuses the
image's KV cache. Without the weights (and no hub to pull them from) each test skips with
the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmcli import hub, manifest
from mmcli.settings import hf_hub_cache

REAL_HF_CACHE = hf_hub_cache()  # read before the autouse fixture isolates the cache dirs
MODELS = ["smolvlm-256m", *[n.strip() for n in os.environ.get("MMCLI_REALMODELS_LIST", "")
                            .split(",") if n.strip()]]
# What a caption of the front page may say: the paper, its text, or its story (the moon landing).
WORDS = ("newspaper", "news", "paper", "text", "article", "headline", "page", "print", "words",
         "letters", "writing", "moon")


def ready(cli, name: str, monkeypatch: pytest.MonkeyPatch) -> manifest.ModelEntry:
    """The model's entry once its files are in the real HF cache (pulled when allowed)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(REAL_HF_CACHE))
    entry = manifest.load().models.get(name)
    if entry is None:
        pytest.fail(f"MMCLI_REALMODELS_LIST names '{name}', which the manifest does not have "
                    "(`mmcli models list`)", pytrace=False)
    if "caption" not in entry.tasks:
        pytest.skip(f"'{name}' does not caption images (tasks: {', '.join(entry.tasks)})")
    if hub.local_files(entry) is not None:
        return entry
    if os.environ.get("MMCLI_REALMODELS") != "1":
        pytest.skip(f"'{name}' is not in the Hugging Face cache ({REAL_HF_CACHE}); "
                    "MMCLI_REALMODELS=1 pulls it")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    pulled = cli("models", "pull", name)
    if pulled.exit_code != 0 and "cannot be reached" in pulled.stderr:
        pytest.skip(f"MMCLI_REALMODELS=1 but '{name}' cannot be pulled here: "
                    f"{pulled.stderr.splitlines()[0]}")
    assert pulled.exit_code == 0, pulled.stderr
    assert hub.local_files(entry) is not None
    return entry


@pytest.mark.realmodels
@pytest.mark.parametrize("name", MODELS)
def test_real_vlm_reads_the_newspaper(cli, media: Path, name: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ready(cli, name, monkeypatch)
    photo = media / "newspaper.jpg"
    result = cli("caption", str(photo), "--model", name, "-f", "json")
    assert result.exit_code == 0, result.stderr
    caption = json.loads(result.stdout)["caption"]
    assert any(word in caption.lower() for word in WORDS), caption
    if "chat" not in entry.tasks:
        return
    chat = cli("chat", "--model", name, "--script", "-", "--max-tokens", "24", "-f", "jsonl",
               input=f"/attach {photo}\nWhat is this?\nWhat is the headline?\n")
    assert chat.exit_code == 0, chat.stderr
    first, second = (json.loads(line) for line in chat.stdout.splitlines())
    assert first["usage"]["cached_tokens"] == 0 and second["reply"].strip()
    assert second["usage"]["cached_tokens"] >= first["usage"]["prompt_tokens"] // 2
    assert second["timings"]["encode_s"] == 0  # the photo was not encoded again
