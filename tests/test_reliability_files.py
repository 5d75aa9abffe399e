# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Reliability of files and processes (issue 15): devices that are not there, damaged model
folders, outputs that cannot be written (read-only, disk full), processes killed or
terminated while writing, and Ctrl-C while the command starts."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

from astrofmtools.cli import main
from astrofmtools.exceptions import InputError
from astrofmtools.utils import atomic_folder, atomic_output, check_output_path

V1 = Path(__file__).parent / "data" / "v1_models"
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and permissions")
TEMPORARY = re.compile(r"\..*\.astrofm-(tmp|old)-")


def _child_env():
    """The environment of a child Python: this checkout importable, one thread."""
    root = str(Path(__file__).parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""),
            "OMP_NUM_THREADS": "1"}


def _dead_pid():
    """The process id of a process that has ended (and was reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def _temporaries(folder="."):
    return sorted(name for name in os.listdir(folder) if TEMPORARY.match(name))


def _hidden(start):
    """The hidden files beside the output whose name begins ``start`` (temporaries)."""
    return sorted(name for name in os.listdir(".") if name.startswith(start))


def _wait_for(predicate, seconds=20.0, process=None):
    """Poll until ``predicate()``; fail if ``process`` ends first or time runs out."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the child ended first ({process.returncode}): {out} {err}")
        time.sleep(0.001)
    pytest.fail("timed out")


# ----------------------------------------------------------------------------
# case 7: --device cuda without a GPU

def test_device_that_is_not_here_is_an_input_error(monkeypatch):
    """Issue 15, case 7: "cuda" without a GPU, "cuda:7" beyond the count and "mps" where
    it is unavailable are InputErrors that say what is available, not torch's RuntimeError."""
    torch = pytest.importorskip("torch")
    from astrofmtools.backbones import default_device
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match=r"device 'cuda': no CUDA device is available "
                                             r"here \(torch sees none\); available: cpu; "
                                             r"use device='cpu' \(--device cpu"):
            default_device("cuda")
        monkeypatch.setenv("ASTROFM_DEVICE", "cuda")
        with pytest.raises(InputError, match=r"\$ASTROFM_DEVICE 'cuda'.*ASTROFM_DEVICE=cpu"):
            default_device()
        monkeypatch.setenv("ASTROFM_DEVICE", "cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    beyond = f"cuda:{max(count, 7)}"
    with pytest.raises(InputError, match=f"device '{beyond}': .*; available: cpu"):
        default_device(beyond)
    if torch.cuda.is_available():
        assert default_device("cuda:0").type == "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(InputError, match="device 'mps': Apple's Metal"):
            default_device("mps")
    assert default_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="Unknown device 'gpu0'"):
        default_device("gpu0")


# ----------------------------------------------------------------------------
# case 9: damaged model folders

def _scribble(path):
    """Overwrite the safetensors header length: 'header too large'."""
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("damage", [_truncate, _scribble])
def test_damaged_saved_classifier_and_detector_name_the_file(damage, tmp_path):
    """Issue 15, case 9: a classifier or detector folder with a truncated or scribbled-on
    safetensors file is an InputError naming the file, not SafetensorError."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from astrofmtools.classify import Classifier
    from astrofmtools.detect import Detector

    folder = tmp_path / "frozen_linear"
    shutil.copytree(V1 / "frozen_linear", folder)
    config = json.loads((folder / "config.json").read_text())
    config["weights"] = str(V1 / "tiny_vit.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    Classifier.load(folder, device="cpu").save(tmp_path / "clf")  # the library's own save
    damage(tmp_path / "clf" / "weights.safetensors")
    with pytest.raises(InputError, match=r"clf/weights.safetensors' is damaged or truncated"):
        Classifier.load(tmp_path / "clf", device="cpu")

    Detector.load(V1 / "detector", device="cpu").save(tmp_path / "det")
    damage(tmp_path / "det" / "model.safetensors")
    with pytest.raises(InputError, match=r"det/model.safetensors' is damaged or truncated"):
        Detector.load(tmp_path / "det", device="cpu")


def test_damaged_backbone_folder_and_checkpoint_name_the_file(tmp_path):
    """Issue 15, case 9: a backbone folder with a damaged ``backbone.safetensors``, and a
    damaged training checkpoint (torch.load), are InputErrors naming the file."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from safetensors.torch import save_file
    from astrofmtools.backbones import BACKBONE_FORMAT, BackboneSpec, load_backbone
    from astrofmtools.utils import load_checkpoint, save_checkpoint

    spec = BackboneSpec(
        name="reliability_tiny_vit", timm_name="vit_tiny_patch16_224", patch_size=8,
        input_size=32, feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32,
                     "num_heads": 2})
    model = load_backbone(spec, weights="random", device="cpu")
    folder = tmp_path / "my_backbone"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.model.state_dict().items()},
              str(folder / "backbone.safetensors"))
    fmt, version = BACKBONE_FORMAT
    (folder / "backbone.json").write_text(json.dumps(
        {"format": fmt, "format_version": version, "spec": spec.to_dict()}))
    assert load_backbone(str(folder), device="cpu").feature_dim == 32
    _scribble(folder / "backbone.safetensors")
    with pytest.raises(InputError, match=r"backbone.safetensors' is damaged or truncated"):
        load_backbone(str(folder), device="cpu")

    save_checkpoint("run/checkpoint.pt", {"fingerprint": "abc", "w": torch.ones(1000)})
    _truncate(Path("run/checkpoint.pt"))
    with pytest.raises(InputError, match=r"Checkpoint 'run/checkpoint.pt' is damaged or "
                                         r"truncated"):
        load_checkpoint("run/checkpoint.pt", "abc")


# ----------------------------------------------------------------------------
# case 14: read-only output folders

def _deny_writing_in(monkeypatch, folder):
    """os.access says ``folder`` is not writable (as for a user without the right)."""
    folder = os.path.abspath(folder)
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.path.abspath(path) == folder and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def _image_and_sources(n=20, size=256, seed=0):
    rng = np.random.default_rng(seed)
    fits.writeto("image.fits", rng.normal(size=(size, size)).astype(np.float32))
    QTable({"x": rng.uniform(40, size - 40, n),
            "y": rng.uniform(40, size - 40, n)}).write("sources.ecsv")


def test_read_only_folder_is_refused_before_the_work(monkeypatch, capsys):
    """Issue 15, case 14: an output in a folder that cannot be written is refused by
    check_output_path (before any work), naming the output, not a hidden temporary."""
    Path("ro").mkdir()
    _deny_writing_in(monkeypatch, "ro")
    with pytest.raises(InputError, match=r"Cannot write 'ro/out.fits': folder 'ro' is not "
                                         r"writable"):
        check_output_path("ro/out.fits")
    with pytest.raises(InputError, match="not writable"):
        with atomic_folder("ro/model"):
            pytest.fail("the body must not run")
    # the command line: exit 2 before any cutout is cut
    _image_and_sources()
    import astrofmtools.cutouts

    def never(*args, **kwargs):
        pytest.fail("the work started")

    monkeypatch.setattr(astrofmtools.cutouts, "make_cutouts", never)
    assert main(["cutouts", "image.fits", "sources.ecsv", "-o", "ro/out.fits", "-q"]) == 2
    err = capsys.readouterr().err
    assert "ro/out.fits" in err and "not writable" in err and "astrofm-tmp" not in err
    assert os.listdir("ro") == []
    # an existing output that is a folder where a file is to go, or the reverse
    Path("taken").mkdir()
    with pytest.raises(InputError, match="a folder of that name exists"):
        check_output_path("taken", overwrite=True)
    Path("file").write_text("x")
    with pytest.raises(InputError, match="a file of that name exists"):
        check_output_path("file", overwrite=True, kind="folder")


@POSIX
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes in read-only folders")
def test_really_read_only_folder_is_refused():
    """Issue 15, case 14: a folder chmod 555 (as another user sees it)."""
    Path("ro").mkdir()
    os.chmod("ro", 0o555)
    try:
        with pytest.raises(InputError, match="'ro' is not writable"):
            with atomic_output("ro/out.ecsv"):
                pass
    finally:
        os.chmod("ro", 0o755)


def test_oserror_while_writing_names_the_output_not_the_temporary():
    """Issue 15, case 14: an OSError raised inside atomic_output or atomic_folder (a
    folder made read-only during the work) is an InputError naming the final output."""
    with pytest.raises(InputError) as info:
        with atomic_output("out.fits") as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", tmp)
    message = str(info.value)
    assert message.startswith("Cannot write 'out.fits': permission denied (EACCES")
    assert "astrofm-tmp" not in message and isinstance(info.value, OSError)
    with pytest.raises(InputError) as info:
        with atomic_folder("model") as tmp:
            raise OSError(errno.EROFS, "Read-only file system", str(tmp / "weights.bin"))
    message = str(info.value)
    assert message == ("Cannot write 'model': read-only file system (EROFS; file "
                       f"{os.path.join('model', 'weights.bin')!r}).")
    # an error about another file (an input read while writing) is left alone
    with pytest.raises(FileNotFoundError, match="input.fits"):
        with atomic_output("out.fits"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "input.fits")
    assert os.listdir(".") == []


# ----------------------------------------------------------------------------
# case 15: disk full

def test_disk_full_names_the_output(monkeypatch, capsys):
    """Issue 15, case 15: ENOSPC (an OSError from astropy, or safetensors' SafetensorError
    that names no path) is an InputError "Cannot write OUTPUT: no space left on device";
    the command line exits 2 with that line, and nothing is left behind."""
    real_writeto = fits.HDUList.writeto

    def full(self, name, *args, **kwargs):
        if not isinstance(name, (str, os.PathLike)):  # (in memory)
            return real_writeto(self, name, *args, **kwargs)
        with open(name, "wb") as f:
            f.write(b"\0" * 2880)
        raise OSError(errno.ENOSPC, "No space left on device", name)

    _image_and_sources()
    with monkeypatch.context() as m:
        m.setattr(fits.HDUList, "writeto", full)
        assert main(["cutouts", "image.fits", "sources.ecsv", "-o", "cut.fits", "-q"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"astrofm cutouts: error: Cannot write 'cut.fits': no space left on "
                        r"device \(ENOSPC; [0-9.]+ [MG]iB free in '.'\)\.\n", err), err
    assert sorted(os.listdir(".")) == ["image.fits", "sources.ecsv"]

    torch = pytest.importorskip("torch")
    safetensors = pytest.importorskip("safetensors")
    import safetensors.torch
    from astrofmtools.utils import write_saved_model

    def rust_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", rust_full)
    with pytest.raises(InputError, match=r"Cannot write 'saved': no space left on device "
                                         r"\(ENOSPC"):
        write_saved_model("saved", {"w": torch.ones(2)}, {"format": "x"})
    assert sorted(os.listdir(".")) == ["image.fits", "sources.ecsv"]


# ----------------------------------------------------------------------------
# case 16: killed or terminated while writing

_SLOW_WRITER = textwrap.dedent("""
    import sys
    from astrofmtools.utils import atomic_output
    with atomic_output(sys.argv[1], overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            block = b"x" * 2**20
            while True:  # until killed
                f.write(block)
                f.flush()
""")


@POSIX
def test_sigkill_mid_write_leaves_a_temporary_the_next_write_removes():
    """Issue 15, case 16 (b): a writer killed with SIGKILL leaves no file at the output and
    a recognisable temporary; the next write of the same output removes it (its process is
    dead) and leaves no temporary; temporaries of live processes or other machines stay."""
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, "big.bin"], env=_child_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any(os.path.getsize(n) > 2**22 for n in _hidden(".big.")), 20, child)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    (stale,) = _temporaries()
    assert re.fullmatch(rf"\.big\.bin\.astrofm-tmp-[0-9a-f]{{8}}-{child.pid}-\w+\.bin", stale)
    assert not os.path.exists("big.bin")

    host = stale.split("-")[2]
    live = f".big.bin.astrofm-tmp-{host}-{os.getppid()}-abcd1234.bin"  # a running process
    elsewhere = f".big.bin.astrofm-tmp-0badcafe-{_dead_pid()}-abcd1234.bin"  # another machine
    other = f".other.bin.astrofm-tmp-{host}-{_dead_pid()}-abcd1234.bin"  # another output
    for name in (live, elsewhere, other):
        Path(name).write_bytes(b"x")
    with atomic_output("big.bin") as tmp:
        Path(tmp).write_bytes(b"done")
    assert Path("big.bin").read_bytes() == b"done"
    assert sorted(os.listdir(".")) == sorted(["big.bin", live, elsewhere, other])


def _big_cutouts_command(output):
    """Inputs of ``astrofm cutouts`` that write about 130 MB, and its command line."""
    _image_and_sources(n=2000, size=2048)
    return [sys.executable, "-m", "astrofmtools", "cutouts", "image.fits", "sources.ecsv",
            "-o", output, "--size", "128", "-q"]


@POSIX
def test_sigterm_while_the_cli_writes_removes_the_temporary():
    """Issue 15, case 16 (a): SIGTERM while ``astrofm cutouts`` writes a 130 MB output ends
    the command with exit code 143 and one line; no temporary and no partial output stay."""
    command = _big_cutouts_command("cut.fits")
    child = subprocess.Popen(command, env=_child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _hidden(".cut.") != [], 30, child)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 143, err
    assert err == "astrofm: terminated\n"
    assert _hidden(".cut.") == [] and not os.path.exists("cut.fits")
    # and SIGKILL: the next run removes what the killed one left
    child = subprocess.Popen(command, env=_child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _temporaries() != [], 30, child)
    finally:
        child.kill()
        child.communicate()
    if not os.path.exists("cut.fits"):  # (killed before its rename, as nearly always)
        assert len(_temporaries()) == 1
    assert subprocess.run(command + ["--overwrite"], env=_child_env(),
                          capture_output=True, timeout=60).returncode == 0
    assert _temporaries() == [] and fits.getheader("cut.fits")["NCUTOUT"] == 2000


@POSIX
def test_sigterm_in_main_raises_in_the_work_and_restores_the_handler(monkeypatch, capsys):
    """Issue 15, case 16 (a): within main, SIGTERM interrupts the work like Ctrl-C (the
    temporary output is removed) and main returns 143; the previous handler is back after."""
    _image_and_sources()
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    real_writeto = fits.HDUList.writeto

    def terminated(self, name, *args, **kwargs):
        if not isinstance(name, (str, os.PathLike)):  # (in memory)
            return real_writeto(self, name, *args, **kwargs)
        Path(name).write_bytes(b"partial")
        seen.append(name)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler
        pytest.fail("SIGTERM did not interrupt the work")

    def outside(signum, frame):  # this process's handler outside main (pytest has none)
        pass

    monkeypatch.setattr(fits.HDUList, "writeto", terminated)
    signal.signal(signal.SIGTERM, outside)
    try:
        assert main(["cutouts", "image.fits", "sources.ecsv", "-o", "cut.fits", "-q"]) == 143
        assert signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, before)
    assert capsys.readouterr().err == "astrofm: terminated\n"
    assert seen and not os.path.exists(seen[0])
    assert sorted(os.listdir(".")) == ["image.fits", "sources.ecsv"]


def test_folder_swap_is_one_step_and_leaves_nothing_behind(monkeypatch):
    """Issue 15, case 16 (c): replacing a folder swaps it in one step on Linux (no moment
    without a folder at the path), elsewhere in two renames; neither leaves temporary or old
    folders, failures included; a previous version moved aside by a killed process is put
    back; the folder has the umask's permissions, not mkdtemp's 0700."""
    from astrofmtools.utils import output

    with atomic_folder("model") as tmp:
        (tmp / "a").write_text("1")
    if sys.platform.startswith("linux"):
        real_replace = os.replace

        def no_rename_of_the_output(src, dst, *args, **kwargs):
            assert os.path.basename(src) != "model", "the old folder was moved aside"
            return real_replace(src, dst, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(os, "replace", no_rename_of_the_output)
            m.setattr(os, "rename", no_rename_of_the_output)
            with atomic_folder("model", overwrite=True) as tmp:
                (tmp / "b").write_text("2")
        assert os.listdir("model") == ["b"]
    with monkeypatch.context() as m:
        m.setattr(output, "_exchange", lambda a, b: False)  # macOS, Windows, NFS
        with atomic_folder("model", overwrite=True) as tmp:
            (tmp / "c").write_text("3")
            os.chmod(tmp / "c", 0o444)
    assert os.listdir("model") == ["c"]
    with pytest.raises(RuntimeError):
        with atomic_folder("model", overwrite=True) as tmp:
            (tmp / "d").write_text("4")
            raise RuntimeError("failed")
    assert os.listdir(".") == ["model"] and os.listdir("model") == ["c"]
    if os.name == "posix":
        umask = os.umask(0o022)
        os.umask(umask)
        assert os.stat("model").st_mode & 0o777 == 0o777 & ~umask

    # killed between the two renames of the fallback: the previous version is put back
    host = output._host_tag()
    os.replace("model", f".model.astrofm-old-{host}-{_dead_pid()}-abcd1234")
    Path(f".model.astrofm-tmp-{host}-{_dead_pid()}-abcd1234").mkdir()
    with pytest.raises(InputError, match="exists"):
        with atomic_folder("model"):
            pass
    assert os.listdir(".") == ["model"] and os.listdir("model") == ["c"]


# ----------------------------------------------------------------------------
# case 17: Ctrl-C while the command starts

_INTERRUPT_ON_IMPORT = textwrap.dedent("""
    import importlib.abc, os, signal, sys

    class CtrlC(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "numpy":  # imported while astrofm starts, not by Python itself
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, CtrlC())
    sys.argv = ["astrofm", "info", "missing.fits"]
""")


@POSIX
@pytest.mark.parametrize("start", [
    # what the console script of ``astrofm = "astrofmtools.cli:main"`` runs
    "from astrofmtools.cli import main\nsys.exit(main())",
    "import runpy\nrunpy.run_module('astrofmtools', run_name='__main__')",
], ids=["console-script", "python-m"])
def test_ctrl_c_while_starting_prints_one_line(start):
    """Issue 15, case 17: Ctrl-C while astrofm imports its modules exits 130 with one
    line, no traceback."""
    result = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_IMPORT + start],
                            env=_child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "astrofm: interrupted\n"
