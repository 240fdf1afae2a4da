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


def test_indexing_settings_validation_and_engine_arguments():
    s = AppSettings()
    assert (s.precision, s.sampling, s.rate, s.motion_gate, s.detect_size) == ("auto", "rate", 3.0, True, 0)
    assert s.engine_kwargs() == {"device": "auto", "precision": "auto", "stride": None, "rate": 3.0,
                                 "motion_gate": True, "detect_size": None}
    odd = AppSettings(precision="int4", sampling="sometimes", rate="fast", motion_gate="false",
                      device="gpu", detect_size=1000)
    assert (odd.precision, odd.sampling, odd.rate, odd.motion_gate) == ("auto", "rate", 3.0, False)
    assert odd.detect_size == 0 and AppSettings(detect_size="960").engine_kwargs()["detect_size"] == 960
    assert AppSettings(detect_size=960).run_key() != s.run_key()
    assert AppSettings(rate=1000).rate == 30.0 and AppSettings(rate=0).rate == 0.5
    fixed = AppSettings(sampling="stride", stride=3, precision="fp32", device="gpu")
    assert fixed.engine_kwargs() == {"device": "cuda", "precision": "fp32", "stride": 3, "rate": None,
                                     "motion_gate": True, "detect_size": None}
    assert fixed.engine_key() != AppSettings(sampling="stride", stride=3).engine_key()


def test_indexing_settings_round_trip_and_migration(tmp_path):
    s = AppSettings(precision="int8", sampling="stride", stride=5, rate=2.5, motion_gate=False,
                    detect_size=960)
    _settings_store(tmp_path / "s.ini").save(s)
    assert _settings_store(tmp_path / "s.ini").load() == s
    # version 2 stored the old default rate 5 as a value: it becomes the new default; a chosen rate stays
    assert AppSettings.from_dict({"schema_version": 2, "rate": "5.0"}).rate == 3.0
    assert AppSettings.from_dict({"schema_version": 2, "rate": "4.0"}).rate == 4.0
    assert AppSettings.from_dict({"schema_version": 3, "rate": "5.0"}).rate == 5.0
    # version 1 had only a stride: a chosen one (not the old default 2) keeps sampling by frames
    assert AppSettings.from_dict({"schema_version": 1, "stride": "3"}).sampling == "stride"
    assert AppSettings.from_dict({"schema_version": 1, "stride": "2"}).sampling == "rate"


def test_settings_dialog_edits_precision_sampling_and_gate(qtbot):
    from GUI.settings_dialog import SettingsDialog

    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.rate.isVisible() and not dialog.stride.isVisible()  # by time: the rate is edited
    assert "A new" not in dialog.consequence.text()
    dialog.detect_size.setCurrentIndex(dialog.detect_size.findData(960))
    assert "A new detector" in dialog.consequence.text()  # another input size indexes again
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp32"))
    dialog.rate.setValue(2.5)
    dialog.motion_gate.setChecked(False)
    edited = dialog.result_settings()
    assert (edited.precision, edited.sampling, edited.rate) == ("fp32", "rate", 2.5)
    assert edited.detect_size == 960 and edited.engine_kwargs()["detect_size"] == 960
    assert not edited.motion_gate
    dialog.sampling.setCurrentIndex(dialog.sampling.findData("stride"))
    assert dialog.stride.isVisible() and not dialog.rate.isVisible()
    dialog.stride.setValue(4)
    edited = dialog.result_settings()
    assert (edited.sampling, edited.stride) == ("stride", 4)
    assert edited.engine_kwargs()["stride"] == 4 and edited.engine_kwargs()["rate"] is None
