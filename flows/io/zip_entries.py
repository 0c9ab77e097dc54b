"""A zip archive copied with one entry's content changed, every other entry's compressed bytes
copied as they are: the cost is that one entry's, not the archive's."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# a zip's records (APPNOTE.TXT 4.3.7, 4.3.12, 4.3.16)
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
CENTRAL_HEADER = struct.Struct("<4s4B4H3L5H2L")
END_OF_CENTRAL_DIRECTORY = struct.Struct("<4s4H2LH")
DATA_DESCRIPTOR_FLAG = 0x08
COPY_CHUNK = 1 << 20


def with_entry(source: Path, target: Path, name: str, edit: Callable[[bytes], bytes]) -> None:
    """`target`: the zip `source` with the entry `name` holding `edit(its content)`,
    compressed again; every other entry copied byte for byte, in the same order. No entry
    may need Zip64 (a 4 GiB entry or archive)."""
    with zipfile.ZipFile(source) as archive, source.open("rb") as read, target.open("wb") as out:
        entries = archive.infolist()
        content = edit(archive.read(name))
        for entry in entries:
            offset = out.tell()
            if entry.filename == name:
                deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
                data = deflate.compress(content) + deflate.flush()
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.CRC, entry.file_size, entry.compress_size = (
                    zlib.crc32(content),
                    len(content),
                    len(data),
                )
            else:
                data = None
            # sizes and CRC in the local header, so no data descriptor follows the data
            entry.flag_bits &= ~DATA_DESCRIPTOR_FLAG
            out.write(entry.FileHeader(zip64=False))
            if data is None:
                copy_range(read, out, data_start(read, entry), entry.compress_size)
            else:
                out.write(data)
            entry.header_offset = offset
        write_central_directory(out, entries)


def data_start(read: BinaryIO, entry: zipfile.ZipInfo) -> int:
    """Where `entry`'s compressed bytes begin in the archive open as `read`."""
    read.seek(entry.header_offset)
    header = LOCAL_HEADER.unpack(read.read(LOCAL_HEADER.size))
    name_length, extra_length = header[-2:]
    return entry.header_offset + LOCAL_HEADER.size + name_length + extra_length


def copy_range(read: BinaryIO, out: BinaryIO, start: int, length: int) -> None:
    read.seek(start)
    while length:
        chunk = read.read(min(COPY_CHUNK, length))
        if not chunk:
            raise zipfile.BadZipFile("an entry runs past the end of the archive")
        out.write(chunk)
        length -= len(chunk)


def write_central_directory(out: BinaryIO, entries: list[zipfile.ZipInfo]) -> None:
    start = out.tell()
    for entry in entries:
        name = entry.filename.encode("utf-8")
        date, time = dos_date_time(entry.date_time)
        out.write(
            CENTRAL_HEADER.pack(
                b"PK\x01\x02",
                entry.create_version,
                entry.create_system,
                entry.extract_version,
                entry.reserved,
                entry.flag_bits,
                entry.compress_type,
                time,
                date,
                entry.CRC,
                entry.compress_size,
                entry.file_size,
                len(name),
                len(entry.extra),
                len(entry.comment),
                0,
                entry.internal_attr,
                entry.external_attr,
                entry.header_offset,
            )
        )
        out.write(name + entry.extra + entry.comment)
    size = out.tell() - start
    if out.tell() >= zipfile.ZIP64_LIMIT or len(entries) >= 0xFFFF:
        raise zipfile.LargeZipFile("a workbook this large needs Zip64, which is not written")
    count = len(entries)
    out.write(END_OF_CENTRAL_DIRECTORY.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))


def dos_date_time(moment: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = moment
    return (year - 1980) << 9 | month << 5 | day, hour << 11 | minute << 5 | second // 2
