"""One call that mines, clusters, trains, checks and exports: :func:`adapt` (``python -m training.adapt``)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.adapt import check as K
from training.adapt.mining import MinedLibrary, load_or_mine
from training.adapt.trainer import Adapter, AdaptSettings, build_base_model, embed_paths
from training.engine import RunLog, resolve_device

MIN_PAIRS = 20
"""Fewer same-person or different-people pairs than this: the check cannot tell better from worse."""


@dataclass(frozen=True)
class MiningSettings:
    """How the library is mined (see :func:`training.adapt.mining.mine_library`)."""

    holdout: float = 0.25
    min_track_len: int = 8
    max_crops: int = 8
    min_height: int = 48
    heldout_step_s: float = 0.5
    video_ids: list[int] | None = None


@dataclass(frozen=True)
class AdaptResult:
    """Outcome of :func:`adapt`.

    Attributes:
        exported: The ONNX model was written to ``out``.
        out: The requested output path.
        summary: The ``eval`` figures (base vs adapted on the held-out pairs); ``None`` when stopped early.
        work: The work folder (crops, checkpoint, log, plots).
        adapter: The finished run (model, labels, history).
        message: One sentence for the user.
    """

    exported: bool
    out: Path
    summary: dict[str, Any] | None
    work: Path
    adapter: Adapter
    message: str


def default_work_dir(out: str | Path) -> Path:
    """``runs/adapt/<output file stem>``."""
    return Path("runs") / "adapt" / Path(out).stem


def _base_check(pairs: K.CheckPairs, s: AdaptSettings, work: Path) -> dict[str, Any]:
    """The base model's figures (cached in ``work/base_check.json`` for the same base, size and pairs)."""
    path = work / "base_check.json"
    key = {"base": s.base, "arch": s.arch, "size": [s.height, s.width], "pairs": [len(pairs.positives),
                                                                                   len(pairs.negatives)]}
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["figures"]
    except (OSError, ValueError):
        pass
    model = build_base_model(s).to(resolve_device(s.device))
    figures = K.run_check(lambda p: embed_paths(model, p, s, resolve_device(s.device), "check: base"), pairs)
    path.write_text(json.dumps({"key": key, "figures": figures}))
    return figures


def _library_lines(lib: MinedLibrary, pairs: K.CheckPairs) -> list[str]:
    held = sum(t.heldout for t in lib.tracks)
    videos = len({t.video_id for t in lib.tracks})
    return [f"library {lib.settings['db']}: {len(lib.tracks)} tracks of {videos} "
            f"videos (cameras), indexed with ReID model {', '.join(lib.reid_models)}",
            f"  training: {len(lib.tracks) - held} tracks, {len(lib.train)} crops; {len(lib.cannot_link)} "
            "must-not-link track pairs (seen in one frame)",
            f"  held out (last {100 * lib.settings['holdout']:g}% of each video): {held} tracks, "
            f"{len(lib.heldout)} crops -> {len(pairs.positives)} same-person pairs (>= 3 s apart), "
            f"{len(pairs.negatives)} different-people pairs (same frame)"]


def adapt(db: str | Path, out: str | Path, *, work: str | Path | None = None,
          settings: AdaptSettings | None = None, mining: MiningSettings | None = None, force: bool = False,
          restart: bool = False, progress: bool = True, stop_after: int | None = None) -> AdaptResult:
    """Adapt a ReID model to an indexed library and export it when the held-out check says it is better.

    Args:
        db: The app's library database.
        out: The ONNX file to write.
        work: Work folder (default :func:`default_work_dir`); a run there is resumed.
        settings: Training settings (default :class:`AdaptSettings` with the torchreid MSMT17 base).
        mining: Mining settings.
        force: Export even when the adapted model is worse on the check (or the check is too small).
        restart: Forget a previous run in ``work`` and start again.
        progress: tqdm bars and echoed log lines.
        stop_after: Stop after this many epochs in total (as if interrupted).

    Raises:
        DataError, CheckpointError, ExportError: Unusable library, base weights or export, in one sentence.
    """
    from training.export import export_onnx

    s = settings or AdaptSettings()
    out = Path(out)
    work = Path(work) if work is not None else default_work_dir(out)
    work.mkdir(parents=True, exist_ok=True)
    log = RunLog(work / "log.txt", progress)
    lib, fresh = load_or_mine(db, work, progress=progress, **asdict(mining or MiningSettings()))
    if fresh:  # an earlier run in this folder (if any) was on other footage or crops
        for name in ("last.pth", "base_check.json"):
            (work / name).unlink(missing_ok=True)
    pairs = K.build_pairs(lib.heldout)
    for line in _library_lines(lib, pairs) + [f"skipped {note}" for note in lib.settings["skipped"]]:
        log(line)
    before = _base_check(pairs, s, work)  # first: Adapter.create seeds the generators
    log(f"base model {s.base or '(random init)'}: TMR@1%FMR {100 * before['tmr_at_fmr']:.1f}% "
        "on the held-out pairs")
    adapter = Adapter.create(lib, s, work, log)
    if restart:
        (work / "last.pth").unlink(missing_ok=True)
    if adapter.resume():
        log(f"resumed from {work / 'last.pth'} after epoch {adapter.epoch}")
    adapter.run(progress=progress, stop_after=stop_after)
    if adapter.epoch < s.epochs:
        return AdaptResult(False, out, None, work, adapter, f"stopped after epoch {adapter.epoch}/"
                           f"{s.epochs}; run the same command again to resume")
    after = K.run_check(lambda p: embed_paths(adapter.model, p, s, adapter.device, "check: adapted"), pairs)
    summary = K.summary(before, after, pairs)
    summary["labels"] = s.labels
    if s.labels == "clusters":  # the final model's pseudo-identities, for the user to look at
        _, adapter.labels, final = adapter.pseudo_labels()
        log(f"final pseudo-identities: {final['clusters']} from {final['clustered_tracks']} of "
            f"{final['tracks']} tracks ({work / 'clusters.json'})")
    _write_clusters(adapter, work)
    plot = K.plot_check(before, after, work / "check.png", title=f"held-out check on {Path(db).name}")
    log(K.describe(summary))
    log(f"similarity distributions: {plot}")
    enough = min(summary["positives"], summary["negatives"]) >= MIN_PAIRS
    if not enough:
        verdict = (f"the held-out check has too few pairs ({summary['positives']} same-person, "
                   f"{summary['negatives']} different-people; {MIN_PAIRS} of each needed) to tell "
                   "whether the adapted model is better")
    elif not summary["better"]:
        verdict = (f"the adapted model is WORSE than the base model on the held-out check "
                   f"(TMR@1%FMR {100 * after['tmr_at_fmr']:.1f}% vs {100 * before['tmr_at_fmr']:.1f}%)")
    else:
        verdict = (f"the adapted model is better on the held-out check (TMR@1%FMR "
                   f"{100 * before['tmr_at_fmr']:.1f}% -> {100 * after['tmr_at_fmr']:.1f}%)")
    if not (enough and summary["better"]) and not force:
        message = (f"{verdict}: NOT exported, {out} left as it was (pass --force to export it anyway; "
                   f"the model is kept in {work / 'last.pth'})")
        log(message)
        return AdaptResult(False, out, summary, work, adapter, message)
    adapter.model.eval()
    report = export_onnx(adapter.model, out, model_name=out.stem, train_dataset=f"adapted:{Path(db).name}",
                         input_size=(s.height, s.width), eval_figures=summary)
    shutil.copyfile(plot, out.with_name(out.stem + ".check.png"))
    message = (f"{verdict}; exported {report.path} (ONNX Runtime vs torch max abs diff "
               f"{report.max_abs_diff:.1e})."
               " Searching with it needs the videos indexed again with this model.")
    log(message)
    return AdaptResult(True, out, summary, work, adapter, message)


def _write_clusters(adapter: Adapter, work: Path) -> None:
    """``work/clusters.json``: the last round's pseudo-identities as lists of tracks."""
    lib = adapter.lib
    groups: dict[int, list[dict[str, Any]]] = {}
    for lab, t in zip(adapter.labels.tolist(), adapter.train_tracks.tolist(), strict=True):
        tr = lib.tracks[t]
        groups.setdefault(lab, []).append({"video_id": tr.video_id, "track_id": tr.track_id,
                                           "first_s": tr.first_s, "last_s": tr.last_s})
    data = {"clusters": [groups[k] for k in sorted(groups) if k >= 0], "outliers": groups.get(-1, [])}
    (work / "clusters.json").write_text(json.dumps(data, indent=1))
