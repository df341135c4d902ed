"""faster-whisper behind ``podcast_core.transcribe``, with the real packaged tiny.en model."""

import dataclasses

import pytest
from conftest import JFK

from podcast_core.settings import WhisperSettings
from podcast_core.transcribe import TranscriptionError, resolve_model, transcribe

TINY = WhisperSettings(model="packaged:tiny.en")


def test_progress_reports_increasing_audio_time_up_to_the_duration():
    seen = []
    result = transcribe(JFK, TINY, progress=lambda done, total, wall: seen.append((done, total)))
    assert seen, "progress was never reported"
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert all(total == pytest.approx(11.0, abs=0.1) for _, total in seen)
    assert done[-1] == pytest.approx(result.segments[-1].end)
    assert result.details["realtime_factor"] > 1


def test_batched_pipeline_gives_the_same_words():
    plain = transcribe(JFK, TINY)
    batched = transcribe(JFK, dataclasses.replace(TINY, batch_size=4))
    assert batched.details["batch_size"] == 4
    words = lambda t: [w.strip(",.").lower() for w in t.text.split()]  # noqa: E731
    assert words(batched) == words(plain)


def test_forced_language_is_recorded():
    result = transcribe(JFK, TINY, language="en")
    assert result.language == "en"
    assert result.details["language_probability"] == 1


def test_undecodable_audio_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3" + b"\x00" * 64)
    with pytest.raises(TranscriptionError, match=r"broken\.mp3"):
        transcribe(bad, TINY)


def test_unloadable_model_is_a_clear_error(tmp_path):
    with pytest.raises(TranscriptionError, match="cannot load Whisper model"):
        transcribe(JFK, dataclasses.replace(TINY, model=str(tmp_path / "no-such-model")))
    with pytest.raises(TranscriptionError, match="unknown packaged Whisper model"):
        resolve_model("packaged:large-v9")


def test_names_pass_through_to_faster_whisper():
    assert resolve_model("Systran/faster-whisper-small") == "Systran/faster-whisper-small"
    assert resolve_model("base") == "base"
