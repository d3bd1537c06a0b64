"""Nothing lost, nothing run: the CLI under locks, full disks, signals, and inputs a user did not expect."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from cli_helpers import (COMMON, ROOT, SUBPROCESS_ENV, TINY, TINY_ARGS, make_images, one_line, run_cli, shard_settings,
                         stored_paths)
from igcli.locking import FolderLock
from igcli.output import Output
from igcli.store import ShardWriter, list_shards


# -- two processes on one folder ---------------------------------------------------------------------------------


def test_a_second_run_on_a_held_part_is_refused_naming_the_holder(tmp_path):
    make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out, 0, 1, "igcli attribute imgs -o out"):
        result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON)
        assert result.returncode == 6
        line = one_line(result.stderr)
        assert f"pid {os.getpid()}" in line and "igcli attribute imgs -o out" in line and "part 0/1" in line
        # Another part of a job splitting the inputs another way is refused too; the same split is welcome.
        other = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON, "--shard", "1/2")
        assert other.returncode == 6 and "splits the inputs into 1 parts" in one_line(other.stderr)
    assert list(out.iterdir()) == []  # nothing written by the refused runs; the lock file is gone with its run


def test_two_identical_runs_started_together_never_lose_an_image(tmp_path):
    paths = make_images(tmp_path / "imgs", 12)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "igcli", "attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON,
               "--shard-size", "1", "-b", "1"]
    env = {**os.environ, **SUBPROCESS_ENV}
    processes = [subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 6], results  # exactly one run writes; the other is refused (held, or not empty after it)
    refused = next(text for code, text in results if code == 6)
    assert "another igcli run" in refused or "not empty" in refused
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)  # every input exactly once


# -- a full disk ---------------------------------------------------------------------------------------------------


def test_a_full_disk_ends_with_one_line_and_resume_completes(tmp_path, small_disk):
    paths = make_images(tmp_path / "imgs", 40)
    out = small_disk / "out"
    args = ["attribute", str(tmp_path / "imgs"), "-o", str(out), *TINY_ARGS, "--crop", "64", "--resize", "64",
            "--steps", "2", "--workers", "0", "--quiet", "--shard-size", "4", "-b", "2"]
    result = run_cli(*args)  # 40 maps of 3 x 64 x 64 float32 need about 2 MB
    assert result.returncode == 6, result.stderr
    line = one_line(result.stderr)
    assert "no space left on the device" in line and "--resume" in line
    finished = stored_paths(out)  # every visible shard is whole
    assert 0 < len(finished) < 40
    assert not [name for name in os.listdir(out) if name.endswith(".partial")]  # the partial was discarded
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    resumed = run_cli(*args, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["already_done"] == len(finished)
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)


def test_a_full_disk_while_indexing_keeps_the_shards(tmp_path, small_disk):
    paths = make_images(tmp_path / "imgs", 4)
    out = small_disk / "out"
    assert run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON, "--shard-size", "2",
                   "-b", "2").returncode == 0
    (out / "index.h5").unlink()
    with open(small_disk / "filler", "wb", buffering=0) as filler:  # take every block that is left
        with pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 4096)
    result = run_cli("index", str(out))
    assert result.returncode == 6 and "no space left on the device" in one_line(result.stderr)
    assert sorted(os.listdir(out)) == ["shard-00000-00000.h5", "shard-00000-00001.h5"]  # no partial index left
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)


def test_a_write_error_discards_only_the_open_shard(tmp_path, monkeypatch):
    """The same as a full disk, by fault injection where no tmpfs can be mounted: ENOSPC from h5py."""
    writer = ShardWriter(tmp_path, 0, shard_settings(), shard_size=2)
    writer.write(_rows(0, 2))  # shard 0 complete
    writer.write(_rows(2, 1))
    calls = {"n": 0}
    original = h5py.Dataset.__setitem__

    def failing(self, key, value):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "Can't write data (file write failed: errno = 28, error message = 'No space left on device')")
        return original(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)
    with pytest.raises(Exception, match="no space left on the device.*--resume") as caught:
        writer.write(_rows(3, 1))
    assert getattr(caught.value, "exit_code", None) == 6
    monkeypatch.undo()
    writer.close()  # nothing left to publish
    assert [p.name for p in list_shards(tmp_path)] == ["shard-00000-00000.h5"]
    assert sorted(os.listdir(tmp_path)) == ["shard-00000-00000.h5"]
    assert writer.discarded_rows == 1




def _rows(start: int, count: int) -> dict:
    return {"attributions": np.ones((count, 3, 8, 8), np.float32), "paths": [f"img{i}" for i in range(start, start + count)],
            "targets": np.zeros(count, np.int64)}


# -- inputs ----------------------------------------------------------------------------------------------------


def test_null_separated_stdin_lists_and_names_kept_verbatim(tmp_path):
    folder = tmp_path / "imgs"
    paths = make_images(folder, 3)
    odd = [folder / "line\nbreak.png", folder / "#hash .png", folder / " lead.png"]
    for source, target in zip(paths, odd):
        shutil.copy(source, target)
    listing = "\0".join(str(p) for p in odd) + "\0"
    result = run_cli("attribute", "-", "--null", "-o", str(tmp_path / "out"), *COMMON, input=listing)
    assert result.returncode == 0, result.stderr
    assert sorted(stored_paths(tmp_path / "out")) == sorted(str(p) for p in odd)
    forgot = run_cli("attribute", "-", "-o", str(tmp_path / "out2"), *COMMON, "--json", input=listing)
    assert forgot.returncode == 2 and forgot.stdout == ""  # not exit 6 after computing every map
    assert "holds NUL bytes" in one_line(forgot.stderr) and "--null" in forgot.stderr


def test_labels_outside_the_model_are_skips_and_a_bad_csv_is_one_line(tmp_path):
    paths = make_images(tmp_path / "imgs", 4)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in zip(paths, (1, 5000, -3, 4))))
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *COMMON, "--target", "label",
                     "--labels", str(labels), "--json")
    assert result.returncode == 5, result.stderr
    summary = json.loads(result.stdout)
    assert summary["attributed"] == 2
    reasons = sorted(skip["reason"] for skip in summary["skipped"])
    assert reasons == ["label -3 is negative", "label 5000 is outside the model's 5 classes (0..4)"]
    labels.write_bytes(b"path,label\n" + os.fsencode(str(paths[0])) + b",\xff\xfe\n")
    bad = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out2"), *COMMON, "--target", "label",
                  "--labels", str(labels))
    assert bad.returncode == 2 and "not UTF-8" in one_line(bad.stderr) and str(labels) in bad.stderr


@pytest.mark.parametrize("document, message", [
    ({"alphas": [i / 200000 for i in range(200001)], "weights": [1 / 200000] * 200000, "steps": 200000},
     "more than 100000"),
    ({"alphas": "01", "weights": [1.0], "steps": 1}, "'alphas' is not a list of numbers"),
    ({"alphas": [0.0, 1.0], "weights": [1.0], "steps": True}, "'steps' must be a positive integer"),
    ({"alphas": [0.0, "1"], "weights": [1.0], "steps": 1}, "something other than numbers"),
])
def test_schedule_files_obey_the_step_cap_and_types(tmp_path, document, message):
    make_images(tmp_path / "imgs", 1)
    schedule = tmp_path / "schedule.json"
    schedule.write_text(json.dumps({"format": "igcli-schedule/1", "model": TINY, "method": "ig", **document}))
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "--schedule",
                     str(schedule), "--quiet")
    assert result.returncode == 2 and message in one_line(result.stderr), result.stderr
    assert not (tmp_path / "out").exists() or not list_shards(tmp_path / "out")


# -- signals from outside, at random moments -------------------------------------------------------------------


@pytest.mark.parametrize("signum, code, again", [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)])
def test_signals_to_the_whole_process_group_save_and_resume(tmp_path, signum, code, again):
    """As SLURM and Ctrl-C do it: the signal reaches the decoding workers too; ``again``: a second signal to
    the main process while it shuts the workers down (``timeout`` forwarding, an impatient user)."""
    paths = make_images(tmp_path / "imgs", 16)
    out = tmp_path / "out"
    args = ["attribute", str(tmp_path / "imgs"), "-o", str(out), *TINY_ARGS, "--steps", "200", "-b", "1",
            "--shard-size", "1", "--workers", "2", "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "igcli", *args, "--json"], env={**os.environ, **SUBPROCESS_ENV},
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list_shards(out)) < 2:
        time.sleep(0.02)
    os.killpg(process.pid, signum)
    if again:
        time.sleep(0.05)
        process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)  # a hang fails here
    assert process.returncode == code, stderr
    summary = json.loads(stdout)  # still printed, and it says what the process exits with
    assert summary["interrupted"] and summary["exit_code"] == code
    assert "Traceback" not in stderr and "--resume" in stderr
    done = stored_paths(out)
    assert 2 <= len(done) < 16
    if (out / "index.h5").exists():  # an index, if written, covers every published shard
        with h5py.File(out / "index.h5", "r") as index:
            assert int(index.attrs["rows"]) == len(Output(out))
    resumed = run_cli(*args, "--resume", "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)


# -- what a hostile tester found ---------------------------------------------------------------------------------


def test_symlinks_planted_in_the_output_folder_are_never_written_through(tmp_path):
    make_images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    out.mkdir()
    victims = [tmp_path / "victim1.txt", tmp_path / "victim2.txt"]
    for victim, name in zip(victims, (".igcli-part-00000.lock", ".shard-00000-00000.h5.partial")):
        victim.write_text("precious")
        (out / name).symlink_to(victim)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON)
    assert result.returncode == 0, result.stderr
    assert [victim.read_text() for victim in victims] == ["precious", "precious"]
    assert not any(path.is_symlink() for path in out.iterdir())
    assert len(stored_paths(out)) == 3


def test_a_schedule_of_the_largest_allowed_size_is_stored(tmp_path):
    make_images(tmp_path / "imgs", 1)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "--steps",
                     "20000", "--workers", "0", "--quiet", "-b", "512")
    assert result.returncode == 0, result.stderr
    assert len(Output(tmp_path / "out").settings["alphas"]) == 20000


def test_a_disk_full_before_anything_is_written_is_one_line(tmp_path, small_disk):
    make_images(tmp_path / "imgs", 2)
    with open(small_disk / "filler", "wb", buffering=0) as filler:
        with pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 4096)
    for command in (["attribute", str(tmp_path / "imgs"), "-o", str(small_disk / "out"), *COMMON],
                    ["calibrate", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "2", "--probe-steps", "4",
                     "--workers", "0", "--quiet", "-o", str(small_disk / "schedule.json")]):
        result = run_cli(*command)
        assert result.returncode == 6, (command, result.stderr)
        assert "space" in one_line(result.stderr)
    assert set(os.listdir(small_disk)) <= {"filler", "out"}  # no partial schedule, no shard
    assert not (small_disk / "out").exists() or os.listdir(small_disk / "out") == []


def test_json_is_strict_and_evaluate_reports_its_skips_on_stderr(tmp_path):
    paths = make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    assert run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON).returncode == 0
    (tmp_path / "boxes.csv").write_text("elsewhere.jpg,0,0,4,4\n")  # no image has a box: no localization value
    result = run_cli("evaluate", str(out), "--metric", "localization,completeness", "--boxes",
                     str(tmp_path / "boxes.csv"), "--json", "--quiet", "--model", TINY, "--device", "cpu")
    assert result.returncode == 5, result.stderr
    assert f"skipped {paths[1]}: localization: no row for this image" in result.stderr
    document = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json output"))
    aggregate = document["results"][0]["aggregate"]
    assert aggregate["completeness_gap"]["count"] == 2
    assert aggregate["roc_auc"]["count"] == 0 and aggregate["roc_auc"]["mean"] is None  # NaN before
