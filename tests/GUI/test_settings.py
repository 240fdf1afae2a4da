"""Settings: the Qt-free dataclass and its QSettings adapter (INI file in a temp folder)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from GUI.settings import SCHEMA_VERSION, AppSettings, SettingsStore


def _settings_store(path: Path) -> SettingsStore:
    return SettingsStore(QSettings(str(path), QSettings.Format.IniFormat))


def test_defaults_and_validation():
    s = AppSettings()
    assert s.schema_version == SCHEMA_VERSION
    assert (s.device, s.stride, s.threshold, s.detector, s.db_path) == ("auto", 2, None, None, None)
    odd = AppSettings(device="TPU", stride="0", threshold=3, detector="", recent_videos=("a", "", "b"))
    assert odd.device == "auto" and odd.stride == 1 and odd.threshold == 1.0 and odd.detector is None
    assert odd.recent_videos == ("a", "b")


def test_recent_videos_newest_first_and_bounded():
    s = AppSettings()
    for i in range(12):
        s = s.with_recent(f"/v/{i}.mp4")
    s = s.with_recent("/v/5.mp4")
    assert s.recent_videos[0] == "/v/5.mp4"
    assert len(s.recent_videos) == 10 and len(set(s.recent_videos)) == 10


def test_from_dict_migrates_and_ignores_unknown_keys():
    old = {"device": "cpu", "stride": "3", "unknown": 1}  # version 0: no schema key
    s = AppSettings.from_dict(old)
    assert s.schema_version == SCHEMA_VERSION and s.device == "cpu" and s.stride == 3


def test_store_round_trip(tmp_path):
    path = tmp_path / "settings.ini"
    s = AppSettings(detector="/m/det.onnx", reid=None, device="gpu", stride=4, threshold=0.62,
                    db_path=str(tmp_path / "lib.sqlite"), last_dir=str(tmp_path),
                    recent_videos=("/v/a.mp4", "/v/b.avi"))
    _settings_store(path).save(s)
    assert path.is_file()
    loaded = _settings_store(path).load()
    assert loaded == s
    # One recent video and no threshold survive the INI round trip too.
    single = AppSettings(recent_videos=("/v/only.mp4",))
    _settings_store(path).save(single)
    assert _settings_store(path).load() == single


def test_store_tolerates_garbage(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text("[app]\nstride=banana\nthreshold=high\ndevice=42\nschema_version=x\n", encoding="utf-8")
    loaded = _settings_store(path).load()
    assert loaded.stride == 2 and loaded.threshold is None and loaded.device == "auto"


def test_geometry_round_trip(tmp_path):
    settings_store = _settings_store(tmp_path / "s.ini")
    assert settings_store.geometry() is None
    settings_store.save_geometry(QByteArray(b"\x01\x02geometry"), QByteArray(b"state"))
    again = _settings_store(tmp_path / "s.ini")
    assert bytes(again.geometry()) == b"\x01\x02geometry"
    assert bytes(again.window_state()) == b"state"
