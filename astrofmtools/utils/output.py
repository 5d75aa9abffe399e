# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Write outputs atomically and never overwrite silently.

Outputs are written under a hidden temporary name beside the final one,
``.{name}.astrofm-tmp-{host}-{pid}-{random}{suffix}`` (``host`` an 8-digit
hash of the machine's name, ``pid`` the writing process), and renamed into
place when complete. A process killed outright (``kill -9``, out of memory)
cannot remove its temporary; the next write of the same output on the same
machine removes the temporaries whose process is gone, never those of a
process still running.

Errors of the operating system while writing (no space left, quota, a
read-only or forbidden folder) become an `~astrofmtools.InputError` (the
command line's exit code 2) that names the final output, not the
temporary, and is an `OSError` too (`astrofmtools.exceptions.WriteError`).
"""

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import zlib
from pathlib import Path

from ..exceptions import InputError, WriteError

__all__ = ["check_output_path", "atomic_output", "atomic_folder"]

log = logging.getLogger("astrofmtools")


def check_output_path(path, overwrite=False, kind="file"):
    """
    Refuse an output path that exists (unless ``overwrite``) or cannot be written.

    Called before the work, so that an output that cannot be written is
    found at once, not after hours of computing.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The output file.
    overwrite : bool, optional
        Allow replacing an existing file.
    kind : str, optional
        ``"folder"``, or what the file is, for messages (``"file"``).

    Returns
    -------
    path : `~pathlib.Path`
        The path, as a `~pathlib.Path`.

    Raises
    ------
    astrofmtools.InputError
        If the file exists and ``overwrite`` is False, its folder does not
        exist or is not writable, or an existing file cannot be replaced
        (a folder where a file is to go, or the reverse; a file of another
        user in a folder with the sticky bit).

    Examples
    --------
    >>> from astrofmtools.utils import check_output_path
    >>> check_output_path("new_catalogue.ecsv").name
    'new_catalogue.ecsv'
    """
    path = Path(path)
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise InputError(f"Output {kind} {str(path)!r} exists; use overwrite=True "
                         "(--overwrite on the command line) to replace it.")
    parent = path.parent  # Path(".") for a bare file name
    if not parent.is_dir():
        raise InputError(f"Cannot write {str(path)!r}: folder {str(parent)!r} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write {str(path)!r}: folder {str(parent)!r} is not "
                         "writable (permission denied or a read-only file system).")
    if exists:
        if kind == "folder" and not path.is_dir():
            raise InputError(f"Cannot write folder {str(path)!r}: a file of that name exists.")
        if kind != "folder" and path.is_dir():
            raise InputError(f"Cannot write {str(path)!r}: a folder of that name exists.")
        why = _why_not_replaceable(path)
        if why:
            raise InputError(f"Cannot replace {str(path)!r}: {why}.")
    return path


def _why_not_replaceable(path):
    """Why this process may not rename over ``path``, or None if it may."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # Windows: read-only files cannot be replaced
        return None if path.is_dir() or os.access(path, os.W_OK) else "it is read-only"
    try:
        folder, own = os.stat(path.parent), os.lstat(path)
    except OSError:
        return None  # gone meanwhile, or unknown: the rename will tell
    if folder.st_mode & stat.S_ISVTX and geteuid() not in (0, folder.st_uid, own.st_uid):
        return (f"it belongs to another user, and folder {str(path.parent)!r} has the "
                "sticky bit set")
    return None


# ----------------------------------------------------------------------------
# temporaries and their clean-up

def _host_tag():
    """8 hexadecimal digits naming this machine (temporaries on shared file systems)."""
    import socket
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _temp_prefix(path, what="tmp"):
    """The start of this process's temporary names for ``path`` (``what``: tmp or old)."""
    return f".{path.name}.astrofm-{what}-{_host_tag()}-{os.getpid()}-"


def _free_name(path, what="tmp"):
    """A temporary name beside ``path`` that nothing has now."""
    while True:
        name = path.parent / f"{_temp_prefix(path, what)}{secrets.token_hex(4)}"
        if not os.path.lexists(name):
            return name


def _make_folder(path):
    """
    A new temporary folder beside ``path``.

    Made with the permissions of the user's umask, as the output folder
    should have them (`tempfile.mkdtemp` makes folders only their owner
    can read).
    """
    while True:
        name = _free_name(path)
        try:
            os.mkdir(name)
        except FileExistsError:  # taken meanwhile
            continue
        return name


def _pid_alive(pid):
    """Whether process ``pid`` (of this machine) may still be running."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process, alive
        return True
    return True


def _remove_tree(folder):
    """Remove ``folder`` (read-only parts too); warn, naming it, if something stays."""
    root = os.path.abspath(folder)

    def retry_writable(func, name, _exc):
        inside = os.path.dirname(os.path.abspath(name))
        if inside != root and not inside.startswith(root + os.sep):
            return  # never change the permissions of anything outside the folder
        try:
            os.chmod(inside, stat.S_IRWXU)
            if os.name == "nt":  # read-only files cannot be deleted there
                os.chmod(name, stat.S_IWRITE | stat.S_IREAD)
            func(name)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=retry_writable)
    else:
        shutil.rmtree(folder, onerror=retry_writable)
    if os.path.lexists(folder):
        log.warning("Could not remove the temporary folder %r; delete it by hand.",
                    str(folder))


def _remove_stale_temporaries(path):
    """
    Remove the temporaries of ``path`` that dead processes of this machine left.

    A folder's previous version moved aside (``.{name}.astrofm-old-...``) by
    a process killed before its new version was in place is put back if
    nothing is at ``path``.
    """
    pattern = re.compile(re.escape(f".{path.name}.astrofm-") + r"(tmp|old)-([0-9a-f]{8})-(\d+)-")
    host = _host_tag()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or match[2] != host or _pid_alive(int(match[3])):
            continue
        try:
            if match[1] == "old" and not os.path.lexists(path):
                os.rename(entry.path, path)
                log.warning("Put back %r, moved aside by an interrupted run.", str(path))
            elif entry.is_dir(follow_symlinks=False):
                log.info("Removing %r, left by an interrupted run.", entry.path)
                _remove_tree(entry.path)
            else:
                log.info("Removing %r, left by an interrupted run.", entry.path)
                os.unlink(entry.path)
        except OSError as exc:  # another process removes it too, or not ours to remove
            log.debug("Could not remove %r: %s", entry.path, exc)


# ----------------------------------------------------------------------------
# errors of the operating system, as errors that name the output

_REASONS = {
    errno.ENOSPC: "no space left on device",
    getattr(errno, "EDQUOT", -1): "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (a failing disk or network file system)",
}

#: safetensors (written in Rust) names the OS error but no path
_RUST_OS_ERROR = re.compile(r"os error (\d+)|Os \{ code: (\d+)")


def _as_os_error(exc):
    """``exc`` as an `OSError`, if it is one or a safetensors I/O error; else None."""
    if isinstance(exc, OSError):
        return exc
    if type(exc).__name__ == "SafetensorError":
        match = _RUST_OS_ERROR.search(str(exc))
        if match:
            code = int(match[1] or match[2])
            return OSError(code, os.strerror(code))
    return None


def _own_file(name, tmp, path):
    """The path in the output that ``name`` (the temporary or in it) stands for, or None."""
    name = os.path.abspath(os.fsdecode(name))
    for own in ((tmp, path) if tmp is not None else (path,)):
        own = os.path.abspath(own)
        if name == own:
            return str(path)
        if name.startswith(own + os.sep):
            return os.path.join(str(path), os.path.relpath(name, own))
    if (os.path.dirname(name) == os.path.abspath(path.parent)
            and os.path.basename(name).startswith(f".{path.name}.astrofm-")):
        return str(path)  # a temporary being made
    return None


def _write_error(exc, tmp, path):
    """A `WriteError` naming ``path`` for an OS error met writing it (via ``tmp``), or None.

    None if the error names a file that is not the output (an input read
    while writing).
    """
    names = [n for n in (getattr(exc, "filename", None), getattr(exc, "filename2", None))
             if n is not None]
    files = [_own_file(name, tmp, path) for name in names]
    if names and None in files:
        return None
    code = getattr(exc, "errno", None)
    reason = _REASONS.get(code) or exc.strerror or str(exc)
    if tmp is not None:
        reason = reason.replace(str(tmp), str(path))
    details = [errno.errorcode[code]] if code in errno.errorcode else []
    details += [f"file {f!r}" for f in files if f != str(path)]
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(path.parent).free
            size = f"{free / 2**30:.1f} GiB" if free >= 2**30 else f"{free / 2**20:.1f} MiB"
            details.append(f"{size} free in {str(path.parent)!r}")
    detail = f" ({'; '.join(details)})" if details else ""
    error = WriteError(f"Cannot write {str(path)!r}: {reason}{detail}.")
    error.errno = code
    return error


@contextlib.contextmanager
def _errors_name(path, tmp):
    """OS errors about the output, raised inside, as `WriteError` naming ``path``."""
    try:
        yield
    except WriteError as exc:  # of a file written inside the temporary folder: name the output
        if tmp is None or str(tmp) not in str(exc):
            raise
        error = WriteError(str(exc).replace(str(tmp), str(path)))
        error.errno = exc.errno
        raise error from exc
    except InputError:  # already names what is wrong (a missing input file, too)
        raise
    except Exception as exc:
        os_error = _as_os_error(exc)
        error = None if os_error is None else _write_error(os_error, tmp, path)
        if error is None:
            raise
        raise error from exc


# ----------------------------------------------------------------------------
# atomic writes

@contextlib.contextmanager
def atomic_output(path, overwrite=False):
    """
    Write a file through a temporary name, renamed into place on success.

    An interrupted or failed write leaves no partial file at ``path``
    (and an existing file there untouched). The temporary is hidden beside
    the output (``.{name}.astrofm-tmp-...``); one left by a process that
    was killed is removed by the next write of the same output.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The final output file.
    overwrite : bool, optional
        Allow replacing an existing file.

    Yields
    ------
    tmp : str
        The temporary path to write to. It keeps the final file's suffix
        so that format guessing by extension still works.

    Raises
    ------
    astrofmtools.InputError
        As `check_output_path`, before anything is written; and an error of
        the operating system while writing (no space left, quota,
        permission, read-only) as an `InputError` (also an `OSError`)
        naming ``path``.

    Examples
    --------
    >>> from astrofmtools.utils import atomic_output
    >>> with atomic_output("hello.txt", overwrite=True) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("hello")
    >>> from pathlib import Path
    >>> Path("hello.txt").read_text()
    'hello'
    """
    path = check_output_path(path, overwrite=overwrite)
    _remove_stale_temporaries(path)
    suffix = "".join(path.suffixes) or ".tmp"
    tmp = None
    try:
        with _errors_name(path, None):
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=suffix,
                                       dir=path.parent)
            os.close(fd)
            os.unlink(tmp)  # writers such as astropy refuse an existing file
        with _errors_name(path, tmp):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _exchange(a, b):
    """
    Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system cannot (then nothing moved).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, getattr(errno, "ENOTSUP", -1),
                getattr(errno, "EOPNOTSUPP", -1)):
        return False  # an old kernel, or a file system without it (NFS, Lustre)
    raise OSError(code, os.strerror(code), str(b))


def _folder_into_place(tmp, path):
    """
    Move the complete folder ``tmp`` to ``path``.

    A folder already at ``path`` is swapped with ``tmp`` in one step where
    the system allows (the old one is then at ``tmp``, removed by the
    caller); elsewhere it is renamed aside first, and put back if the
    second rename fails.
    """
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    if _exchange(tmp, path):
        return
    old = _free_name(path, "old")
    try:
        os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:  # interrupted between the two: the old folder goes back
        if os.path.lexists(old) and not os.path.lexists(path):
            with contextlib.suppress(OSError):
                os.replace(old, path)
        raise
    _remove_tree(old)


@contextlib.contextmanager
def atomic_folder(path, overwrite=False):
    """
    Write a folder through a temporary one, renamed into place on success.

    An interrupted or failed write leaves no partial folder at ``path``;
    an existing folder there stays untouched until the new one is complete,
    and on Linux the two are swapped in one step, so that a folder is at
    ``path`` at every moment. Temporary folders left by a process that was
    killed are removed by the next write of the same output.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The final output folder.
    overwrite : bool, optional
        Allow replacing an existing folder.

    Yields
    ------
    tmp : `~pathlib.Path`
        The temporary folder (next to ``path``) to write into.

    Raises
    ------
    astrofmtools.InputError
        As `check_output_path`, before anything is written; and an error of
        the operating system while writing (no space left, quota,
        permission, read-only) as an `InputError` (also an `OSError`)
        naming ``path``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from astrofmtools.utils import atomic_folder
    >>> with atomic_folder("model_dir") as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(p.name for p in Path("model_dir").iterdir())
    ['config.json']
    """
    path = check_output_path(path, overwrite=overwrite, kind="folder")
    _remove_stale_temporaries(path)
    # an interrupted run's folder put back: refused again without overwrite
    path = check_output_path(path, overwrite=overwrite, kind="folder")
    tmp = None
    try:
        with _errors_name(path, None):
            tmp = _make_folder(path)
        with _errors_name(path, tmp):
            yield tmp
            _folder_into_place(tmp, path)
    finally:
        if tmp is not None and os.path.lexists(tmp):  # a failed write, or the old folder
            _remove_tree(tmp)
