"""Atomic outputs and no silent overwrite (lumiere.files and every writer built on it), with
faults injected: a kill during the write, a full disk, a failing encoder, racing writers."""

import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import lumiere.files
import lumiere.video
from lumiere.files import OutputExistsError, atomic_dir, atomic_file, replace_entries, update_folder, write_text
from lumiere.testing import subprocess_env
from lumiere.video import export_to_gif, export_to_mp4, save_contact_sheet, save_video

CLIP = np.linspace(0, 1, 4 * 8 * 8 * 3).reshape(4, 8, 8, 3)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp") or ".tmp." in path.name)


@pytest.mark.parametrize("writer", [export_to_mp4, export_to_gif, save_contact_sheet, save_video])
def test_writers_refuse_to_replace_without_overwrite(writer, tmp_path):
    path = tmp_path / ("out.gif" if writer is export_to_gif else "out.png" if writer is save_contact_sheet else "o.mp4")
    path.write_bytes(b"the user's file")
    with pytest.raises(OutputExistsError, match="exists; choose another name or pass overwrite"):
        writer(CLIP, path)
    assert path.read_bytes() == b"the user's file"
    writer(CLIP, path, overwrite=True)
    assert path.read_bytes() != b"the user's file" and path.stat().st_size > 0
    assert leftovers(tmp_path) == []


def test_an_output_path_that_is_a_folder_is_an_error(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is a folder; give a file name"):
            export_to_mp4(CLIP, tmp_path / "x.mp4", overwrite=overwrite)
    assert (tmp_path / "x.mp4").is_dir()


def test_a_failing_encoder_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    export_to_mp4(CLIP, path)
    before = path.read_bytes()

    def disk_full(video, temporary, fps, destination):
        temporary.write_bytes(b"half an mp4")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lumiere.video, "_encode_h264", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_to_mp4(CLIP, path, overwrite=True)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 48 KiB tmpfs (needs root; skipped elsewhere, where the patched encoder test stands in)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png"])
def test_a_full_disk_is_an_error_and_leaves_nothing(tiny_disk, suffix):
    noise = np.random.default_rng(0).random((16, 64, 64, 3))  # incompressible: larger than the disk
    with pytest.raises(OSError):
        save_video(noise, tiny_disk / f"clip{suffix}")
    assert list(tiny_disk.iterdir()) == []


def test_a_writer_killed_mid_write_keeps_the_file_it_was_replacing(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old, complete")
    script = (
        "import os, signal, sys\n"
        "from lumiere.files import atomic_file\n"
        "with atomic_file(sys.argv[1], overwrite=True) as temporary:\n"
        "    temporary.write_text('new, half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], env=subprocess_env(), timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert path.read_text() == "old, complete"
    assert len(leftovers(tmp_path)) == 1  # a hidden .result.json.*.tmp.json, never the destination


def test_racing_writers_each_publish_a_whole_file(tmp_path):
    path = tmp_path / "shared.txt"
    contents = [f"writer {i} " * (1000 + 5000 * i) for i in range(4)]
    threads = [threading.Thread(target=write_text, args=(path, text, True)) for text in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_text() in contents  # one whole version, no trailing bytes of another
    assert leftovers(tmp_path) == []


def test_without_overwrite_a_file_that_appears_meanwhile_is_kept(tmp_path):
    path = tmp_path / "once.txt"
    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        with atomic_file(path) as first:
            first.write_text("first")
            write_text(path, "second")  # another writer publishes first
    assert path.read_text() == "second"
    assert leftovers(tmp_path) == []


def test_published_files_get_normal_permissions(tmp_path):
    """Not mkstemp's private 0o600: what open() would have made under the umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    path = write_text(tmp_path / "a.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_dir_refuses_a_non_empty_folder_and_replaces_it_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="is not empty"):
        with atomic_dir(target):
            pass
    with atomic_dir(target, overwrite=True) as folder:
        (folder / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        with atomic_dir(tmp_path / "file"):
            pass


def test_atomic_dir_leaves_nothing_when_its_writer_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as folder:
            (folder / "half").write_text("x")
            raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


def test_update_folder_replaces_its_entries_and_keeps_the_rest(tmp_path):
    (tmp_path / "run" / "unet").mkdir(parents=True)
    (tmp_path / "run" / "unet" / "stale.bin").write_text("old weights")
    (tmp_path / "run" / "checkpoint-5").mkdir()
    (tmp_path / "run" / "README.md").write_text("card")

    def save(folder: Path) -> None:
        (folder / "unet").mkdir()
        (folder / "unet" / "weights.bin").write_text("new weights")
        (folder / "model_index.json").write_text("{}")

    update_folder(tmp_path / "run", save)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "README.md",
        "checkpoint-5",
        "model_index.json",
        "unet",
    ]
    assert [p.name for p in (tmp_path / "run" / "unet").iterdir()] == ["weights.bin"]  # replaced, not merged


def test_replace_entries_moves_model_index_last(tmp_path, monkeypatch):
    source = tmp_path / "staging"
    (source / "unet").mkdir(parents=True)
    (source / "model_index.json").write_text("{}")
    (source / "zzz.txt").write_text("")
    order = []
    real = lumiere.files.replace

    def recording(entry, destination):
        order.append(entry.name)
        real(entry, destination)

    monkeypatch.setattr(lumiere.files, "replace", recording)
    replace_entries(source, tmp_path / "dest")
    assert order[-1] == "model_index.json" and not source.exists()
