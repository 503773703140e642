"""The stand-in Drive's accountant: what Google Drive would count against the quota, live files plus the bin.

Drive keeps a deleted file in the bin for 30 days, and a replaced file's earlier version as a revision, and both
count against the quota. A folder on the local disk forgets them; this process remembers. It watches the "My Drive"
folder with Linux inotify (every process's writes, from Python or C: the Trainer's checkpoints, safetensors,
Arrow, torch.save), keeps each file's last size, and counts:

- live: the bytes of the files there now;
- bin: the bytes of every file deleted or moved out of Drive, and of every earlier version of a file that was
  replaced (renamed over, or written again with other contents).

It keeps the peak of live + bin over the whole run, and writes the ledger (``ledger.json`` in the account folder,
beside My Drive, never inside it) after changes and on SIGTERM, then with a final audit: the live bytes walked
anew, which must equal the tracked ones (a difference means events were missed).

It runs as its own process (``python -I _accountant.py ACCOUNT MY_DRIVE [OWNER_PID]``, standard library only),
started by ``drive.mount`` and alive across kernels and "disconnects", as Drive is, until SIGTERM (or until the
owner process, the rehearsal's, is gone). It holds a descriptor of the My Drive
folder, so it follows it when the stand-in mounts or unmounts it (a rename: inotify watches follow the inode).

Limits: a file created and deleted before its folder's watch was added (microseconds after the folder appeared)
is not seen, nor the size of one deleted (or moved out) before its close event was read (it counts as 0 bytes);
sizes are read when an event is handled (milliseconds later; inotify events carry none), so a file written twice
within that time counts as one version; a file opened for writing twice counts as two versions (Drive may have
uploaded only one); a file deleted seconds after it was written counts in the bin, although Drive's client may never
have uploaded it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import struct
import sys
import time

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
WATCH = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
EVENT = struct.Struct("iIII")
CHECKPOINT = re.compile(r"^checkpoint-\d+$")
LEDGER, PID_FILE = "ledger.json", "accountant.pid"


class Accountant:
    def __init__(self, account: str, my_drive: str):
        self.account = account
        self.root_fd = os.open(my_drive, os.O_RDONLY | os.O_DIRECTORY)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.watches: dict[int, str] = {}  # watch descriptor -> folder, relative to My Drive ("" for it)
        self.files: dict[str, list] = {}  # path -> [size, mtime_ns, written: closed after writing at least once]
        self.live = self.bin = 0
        self.counts = {"events": 0, "deleted_files": 0, "replaced_versions": 0, "moved_out": 0}
        self.bin_by_area: dict[str, int] = {}
        self.checkpoints: set[str] = set()
        self.peak = {"bytes": 0, "live": 0, "bin": 0, "path": ""}
        self.overflow = False
        self.pending: dict[int, tuple[str, bool, int]] = {}  # cookie -> (path, is folder, batches waited)
        self.dirty = True
        self.add_tree("")

    # ---------------------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return f"/proc/self/fd/{self.root_fd}/{rel}" if rel else f"/proc/self/fd/{self.root_fd}"

    def stat(self, rel: str):
        try:
            return os.stat(rel, dir_fd=self.root_fd, follow_symlinks=False)
        except OSError:
            return None

    def add_watch(self, rel: str) -> None:
        wd = self.libc.inotify_add_watch(self.fd, self.path(rel).encode(), WATCH)
        if wd >= 0:
            self.watches[wd] = rel

    def add_tree(self, rel: str, written: bool = False) -> None:
        """Watch a folder and everything in it; track the files already there (``written``: complete files, moved
        in; else a first close after this is not counted as a new version)."""
        self.add_watch(rel)
        try:
            entries = list(os.scandir(self.path(rel)))
        except OSError:
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                self.note_folder(child)
                self.add_tree(child, written)
            elif child not in self.files:
                self.track(child, written)

    def note_folder(self, rel: str) -> None:
        if CHECKPOINT.match(os.path.basename(rel)):
            self.checkpoints.add(rel)

    def track(self, rel: str, written: bool) -> None:
        st = self.stat(rel)
        size, mtime = (st.st_size, st.st_mtime_ns) if st else (0, 0)
        self.set_size(rel, size)
        self.files[rel] = [size, mtime, written]

    def refresh(self, rel: str) -> None:
        """A tracked file's size as it is now (a complete file, moved)."""
        st = self.stat(rel)
        if st is not None:
            self.set_size(rel, st.st_size)
            self.files[rel][1:] = [st.st_mtime_ns, True]

    def set_size(self, rel: str, size: int) -> None:
        old = self.files[rel][0] if rel in self.files else 0
        self.live += size - old
        if rel in self.files:
            self.files[rel][0] = size

    def to_bin(self, rel: str, size: int, counter: str) -> None:
        self.bin += size
        self.counts[counter] += 1
        area = area_of(rel)
        self.bin_by_area[area] = self.bin_by_area.get(area, 0) + size

    def forget(self, rel: str, counter: str) -> None:
        size = self.files.pop(rel, [0])[0]
        self.live -= size
        self.to_bin(rel, size, counter)

    def under(self, folder: str, mapping) -> list[str]:
        return [p for p in mapping if p == folder or p.startswith(folder + "/")]

    # ---------------------------------------------------------------------------------------------
    def handle(self, wd: int, mask: int, cookie: int, name: str) -> None:
        self.counts["events"] += 1
        if mask & IN_Q_OVERFLOW:
            self.overflow = True
            return
        if mask & IN_IGNORED or mask & IN_DELETE_SELF:
            self.watches.pop(wd, None)
            return
        if mask & IN_MOVE_SELF or wd not in self.watches:
            return
        folder = self.watches[wd]
        rel = f"{folder}/{name}" if folder else name
        is_dir = bool(mask & IN_ISDIR)
        if mask & IN_CREATE:
            if is_dir:
                self.note_folder(rel)
                self.add_tree(rel)
            elif rel not in self.files:
                self.track(rel, written=False)
        elif mask & IN_CLOSE_WRITE:
            st = self.stat(rel)
            if st is None:
                return
            entry = self.files.get(rel)
            if entry is None:
                self.track(rel, written=True)
                return
            changed = (st.st_size, st.st_mtime_ns) != (entry[0], entry[1])
            if entry[2] and changed and entry[0] > 0:  # written again: the earlier version stays on Drive
                self.to_bin(rel, entry[0], "replaced_versions")
            self.set_size(rel, st.st_size)
            entry[1], entry[2] = st.st_mtime_ns, True
        elif mask & IN_DELETE:
            if not is_dir and rel in self.files:
                self.forget(rel, "deleted_files")
        elif mask & IN_MOVED_FROM:
            self.pending[cookie] = (rel, is_dir, 0)
        elif mask & IN_MOVED_TO:
            source = self.pending.pop(cookie, None)
            if source is None:  # moved in from outside Drive
                if is_dir:
                    self.note_folder(rel)
                    self.add_tree(rel, written=True)
                else:
                    self.replace(rel)
                    self.track(rel, written=True)
            else:
                self.rename(source[0], rel, is_dir)
        self.check_peak(rel)

    def replace(self, rel: str) -> None:
        """A file moved over ``rel``: the one that was there is a replaced version."""
        if rel in self.files:
            self.forget(rel, "replaced_versions")

    def rename(self, old: str, new: str, is_dir: bool) -> None:
        """A move within Drive. The moved files are measured again where they are now: a file renamed as soon as
        it was closed (an atomic write: a temporary file, then os.replace) was gone from its first name before its
        close event was read."""
        if not is_dir:
            self.replace(new)
            if old in self.files:
                self.files[new] = self.files.pop(old)
                self.refresh(new)
            else:
                self.track(new, written=True)
            return
        for path in self.under(old, list(self.files)):
            self.files[new + path[len(old):]] = self.files.pop(path)
            self.refresh(new + path[len(old):])
        for wd, folder in list(self.watches.items()):
            if folder == old or folder.startswith(old + "/"):
                self.watches[wd] = new + folder[len(old):]
        self.checkpoints = {new + p[len(old):] if p == old or p.startswith(old + "/") else p for p in self.checkpoints}
        self.note_folder(new)

    def moved_out(self, rel: str, is_dir: bool) -> None:
        """Moved out of Drive (no matching arrival): gone from My Drive, as a deletion."""
        for path in self.under(rel, list(self.files)) if is_dir else [rel]:
            if path in self.files:
                self.forget(path, "moved_out")
        if is_dir:
            for wd, folder in list(self.watches.items()):
                if folder == rel or folder.startswith(rel + "/"):
                    self.libc.inotify_rm_watch(self.fd, wd)
                    self.watches.pop(wd, None)

    def check_peak(self, rel: str) -> None:
        self.dirty = True
        if self.live + self.bin > self.peak["bytes"]:
            self.peak = {"bytes": self.live + self.bin, "live": self.live, "bin": self.bin, "path": rel}

    # ---------------------------------------------------------------------------------------------
    def read_events(self) -> int:
        try:
            data = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            data = b""
        offset = count = 0
        while offset < len(data):
            wd, mask, cookie, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size: offset + EVENT.size + length].rstrip(b"\0").decode("utf-8", "replace")
            offset += EVENT.size + length
            self.handle(wd, mask, cookie, name)
            count += 1
        # a move whose arrival did not come within the next read went out of Drive
        for cookie, (rel, is_dir, waited) in list(self.pending.items()):
            if waited >= 1:
                del self.pending[cookie]
                self.moved_out(rel, is_dir)
                self.check_peak(rel)
            else:
                self.pending[cookie] = (rel, is_dir, waited + 1)
        return count

    def audit(self) -> dict:
        """My Drive walked anew: its live bytes and files, and the files whose size differs from the tracked one
        (or that are untracked, or tracked but gone): each a missed event."""
        size = files = 0
        differ = {}
        found = set()
        for folder, _, names in os.walk(self.path("")):
            for name in names:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, self.path(""))
                try:
                    actual = os.stat(path, follow_symlinks=False).st_size
                except OSError:
                    continue
                size, files = size + actual, files + 1
                found.add(rel)
                tracked = self.files.get(rel, [None])[0]
                if tracked != actual and len(differ) < 20:
                    differ[rel] = {"tracked": tracked, "actual": actual}
        for rel in set(self.files) - found:
            if len(differ) < 20:
                differ[rel] = {"tracked": self.files[rel][0], "actual": None}
        return {"live": size, "files": files, "differ": differ}

    def ledger(self, final: bool = False) -> dict:
        live_by_area: dict[str, int] = {}
        for path, (size, *_rest) in self.files.items():
            live_by_area[area_of(path)] = live_by_area.get(area_of(path), 0) + size
        return {"live": self.live, "bin": self.bin, "usage": self.live + self.bin, "peak": self.peak,
                "files_live": len(self.files), **self.counts, "bin_by_area": self.bin_by_area,
                "live_by_area": live_by_area, "checkpoints_seen": sorted(self.checkpoints),
                "overflow": self.overflow, "final": final, "audit": self.audit() if final else None,
                "pid": os.getpid(), "written_at": time.time()}

    def write(self, final: bool = False) -> None:
        target = os.path.join(self.account, LEDGER)
        with open(target + ".tmp", "w") as handle:
            json.dump(self.ledger(final), handle, indent=1)
        os.replace(target + ".tmp", target)
        self.dirty = False

    def run(self, owner: int | None = None) -> None:
        """Until SIGTERM, or until the ``owner`` process (the rehearsal's) or the account folder is gone: an
        accountant is never left behind by a rehearsal that was killed."""
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        self.write()
        last_write = last_check = time.monotonic()
        while not stop:
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if not os.path.isdir(self.account) or (owner and not alive(owner)):
                    return
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready or self.pending:
                self.read_events()
            if self.dirty and (time.monotonic() - last_write > 0.25 or not ready):
                self.write()
                last_write = time.monotonic()
        for _ in range(3):  # what the queue still holds (and the arrivals of pending moves)
            time.sleep(0.05)
            self.read_events()
        self.write(final=True)


def area_of(rel: str) -> str:
    """The part of My Drive a path belongs to, for the ledger's breakdown: three folders deep (e.g.
    xlsr-runs/tr/04_train), a checkpoint's files under one name (xlsr-runs/tr/04_train/checkpoint-*)."""
    area: list[str] = []
    for part in rel.split("/"):
        if CHECKPOINT.match(part):
            area.append("checkpoint-*")
            break
        if len(area) == 3:
            break
        area.append(part)
    return "/".join(area)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    account, my_drive = argv[1], argv[2]
    owner = int(argv[3]) if len(argv) > 3 and argv[3] else None
    accountant = Accountant(account, my_drive)
    with open(os.path.join(account, PID_FILE + ".tmp"), "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(os.path.join(account, PID_FILE + ".tmp"), os.path.join(account, PID_FILE))
    accountant.run(owner)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
