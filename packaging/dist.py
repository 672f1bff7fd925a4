"""The archive half of packaging/build, in Python so it needs no zip, tar or sha256sum flavour.

  dist.py archive WHEEL TARGET VERSION DIR   the wheel's binary + README.md + LICENSE, as
                                             DIR/claude-c2c-VERSION-TARGET.tar.gz (.zip for
                                             Windows) under a folder of that name; prints its path
  dist.py sums DIR                           DIR/SHA256SUMS over every other file in DIR
  dist.py table DIR                          one line per file in DIR: size and name
"""

import hashlib
import io
import os
import sys
import tarfile
import zipfile


def wheel_binary(wheel):
    """The binary maturin put in the wheel (`<name>.data/scripts/claude-c2c[.exe]`)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if (len(parts) == 3 and parts[0].endswith(".data") and parts[1] == "scripts"
                    and parts[2] in ("claude-c2c", "claude-c2c.exe")):
                return parts[2], zf.read(info)
    sys.exit(f"{wheel}: no claude-c2c binary under *.data/scripts/")


def archive(wheel, target, version, out_dir):
    name, binary = wheel_binary(wheel)
    stem = f"claude-c2c-{version}-{target}"
    files = [(name, binary, 0o755)]
    for doc in ("README.md", "LICENSE"):
        with open(doc, "rb") as f:
            files.append((doc, f.read(), 0o644))
    if "windows" in target:
        path = os.path.join(out_dir, stem + ".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, data, mode in files:
                info = zipfile.ZipInfo(f"{stem}/{member}", date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
    else:
        path = os.path.join(out_dir, stem + ".tar.gz")
        with tarfile.open(path, "w:gz") as tf:
            for member, data, mode in files:
                info = tarfile.TarInfo(f"{stem}/{member}")
                info.size, info.mode, info.mtime = len(data), mode, 1767225600  # 2026-01-01
                tf.addfile(info, io.BytesIO(data))
    print(path)


def sums(out_dir):
    lines = []
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name)
        if name == "SHA256SUMS" or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}\n")
    with open(os.path.join(out_dir, "SHA256SUMS"), "w") as f:
        f.writelines(lines)


def table(out_dir):
    for name in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, name))
        print(f"{size / 1e6:8.1f} MB  {name}" if size >= 100_000 else f"{size:8} B   {name}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "archive" and len(args) == 4:
        archive(*args)
    elif command == "sums" and len(args) == 1:
        sums(*args)
    elif command == "table" and len(args) == 1:
        table(*args)
    else:
        sys.exit(__doc__)
