"""Files a user hands us (a request, saved stack outputs, the training CSV), all read the same tolerant way.

Windows tools add what a strict reader refuses: PowerShell's `Out-File` and Excel's "CSV UTF-8"
start the file with a UTF-8 byte-order mark, and Excel ends lines with CRLF. Both are accepted
here, once, for every file: the BOM is dropped, any line ending is a line ending. The endpoint
accepts a BOM too, so a file `invoke --file` sends is read the way the server would read it.

A training CSV may also come compressed, as data sets are published: UCI's own download of the
heart-failure data is a .zip. A zip archive with one CSV in it, and a gzip, bzip2 or xz file, are read
as the CSV inside (what pandas' read_csv does with compression="infer"). Any other file that is not
text is named by its first bytes (a workbook, Parquet, an archive) with the way to get a CSV from it,
and a path that is a URL is named as one with the way to download it, never "does not exist".
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Any

from jobs.errors import JobsError

BOM = b"\xef\xbb\xbf"
# A compressed CSV is refused past this many bytes once decompressed: read_csv_lines holds every cell
# in memory (a 1 GiB CSV takes several GiB), and a file that compresses 1000:1 must not fill it.
MAX_DECOMPRESSED_BYTES = 1024**3
# Formats recognised by their first bytes (their published signatures): name, and whether it is read.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),  # OLE2, Excel 97-2003's container
    (b"%PDF", "pdf"),
    (b"SQLite format 3\x00", "sqlite"),
)
_COMPRESSED = ("gzip", "bzip2", "xz")
_CHUNK = 1024 * 1024
# A scheme of two letters or more (a Windows drive letter is one) and a colon: argparse's Path has
# already folded the URL's "//" into "/". "azureml:NAME:VERSION" is Azure ML's short asset reference.
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/+(?P<rest>.*)$")
_ASSET_REFERENCE = re.compile(r"^azureml:(?P<name>[^:/]+):(?P<version>[^:/]+)$")


def read_text(path: Path, what: str) -> str:
    """The file's text: UTF-8 with or without a BOM, CRLF or CR line endings turned into LF.

    `what` names the file in messages (e.g. "--file request.json"). Raises JobsError when the path
    is a URL (how to download it), the file cannot be read, is a known binary format (which, and how
    to convert it; a compressed file is not decompressed here) or is not UTF-8 text (with the byte
    offset and what to do).
    """
    raw = _read_bytes(path, what)
    kind = binary_format(raw)
    if kind is not None:
        raise JobsError(f"{what} {_format_advice(kind, Path(path), csv_reader=False)}")
    return _decoded(raw, what)


def read_csv_text(path: Path, what: str) -> str:
    """A CSV file's text, as read_text reads it, or the text of the CSV inside a compressed file.

    Read as the CSV inside: a zip archive holding exactly one .csv (folders, macOS's __MACOSX
    entries and `._` files aside), and a gzip, bzip2 or xz file. Raises JobsError as read_text does,
    and for a zip with no CSV or several (what it holds and how to extract the one meant), an
    encrypted or damaged archive, and one that decompresses to more than MAX_DECOMPRESSED_BYTES.
    """
    path = Path(path)
    raw = _read_bytes(path, what)
    kind = binary_format(raw)
    if kind == "zip":
        raw, inner = _csv_in_zip(raw, path, what)
        what = f"{what} ({inner} inside it)"
    elif kind in _COMPRESSED:
        raw = _decompressed(raw, kind, path, what)
        what = f"{what} (its {kind}-compressed content)"
    else:
        if kind is not None:
            raise JobsError(f"{what} {_format_advice(kind, path, csv_reader=True)}")
        return _decoded(raw, what)
    inner_kind = binary_format(raw)
    if inner_kind is not None or _is_tar(raw):
        # A .tar.gz, or a zipped workbook: one layer is undone, and what is inside is not a CSV either.
        raise JobsError(f"{what} {_format_advice(inner_kind or 'tar', path, csv_reader=False)}")
    return _decoded(raw, what)


def binary_format(raw: bytes) -> str | None:
    """The format a file's first bytes name ("zip", "gzip", "xlsx", "parquet", ...; see _SIGNATURES), or None.

    A zip archive that is an Office Open XML workbook is "xlsx" (the package's [Content_Types].xml,
    ECMA-376 part 2, with the workbook's xl/ folder), an OpenDocument spreadsheet "ods" (its
    `mimetype` entry, which the OpenDocument package format puts first).
    """
    kind = next((name for magic, name in _SIGNATURES if raw.startswith(magic)), None)
    if kind == "zip":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = set(archive.namelist())
                if "[Content_Types].xml" in names and any(name.startswith("xl/") for name in names):
                    return "xlsx"
                if "mimetype" in names and archive.read("mimetype").startswith(
                    b"application/vnd.oasis.opendocument.spreadsheet"
                ):
                    return "ods"
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, zlib.error, EOFError):
            return "zip"  # damaged: the reader says so
    return kind


def _read_bytes(path: Path, what: str) -> bytes:
    refuse_url(Path(path), what)
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise JobsError(f"cannot read {what}: {error.strerror or error}") from None


def _decoded(raw: bytes, what: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(raw[:200]):
        # UTF-16 without a BOM decodes as "valid" UTF-8 full of NUL characters; name it for what it is.
        raise JobsError(
            f"{what} is not UTF-8 text: it looks like UTF-16 (NUL bytes between the characters, as "
            "Windows PowerShell 5.1's `>` and Notepad's \"Unicode\" write); save it as UTF-8 (in "
            'Excel: "CSV UTF-8"; in PowerShell: `-Encoding utf8`)'
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise JobsError(
            f"{what} is not text: it has a NUL byte at offset {nul}, so it is a binary file of a kind "
            f"not recognised (it starts with the bytes {raw[:8].hex(' ')}); export the data as a CSV "
            '(in Excel: "CSV UTF-8") and pass that file'
        )
    try:
        # utf-8-sig drops one leading BOM and is plain UTF-8 otherwise.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JobsError(
            f"{what} is not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); save it as "
            'UTF-8 (in Excel: "CSV UTF-8"; in PowerShell: `-Encoding utf8`)'
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _looks_like_utf16(sample: bytes) -> bool:
    """UTF-16 text without a BOM: text in the ASCII range puts a NUL in every other byte, on one side only.

    Any other NUL (a binary file) is not UTF-16, and says so in its own message.
    """
    if len(sample) < 2 or b"\x00" not in sample:
        return False
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    pairs = len(sample) // 2
    return max(even, odd) >= pairs * 0.3 and min(even, odd) <= max(even, odd) * 0.1


def _csv_in_zip(raw: bytes, path: Path, what: str) -> tuple[bytes, str]:
    """The bytes of the one CSV in a zip archive, and its name in the archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and not PurePosixPath(info.filename).name.startswith("._")
            ]
            csvs = [info for info in members if info.filename.lower().endswith(".csv")]
            if len(csvs) == 1:
                with archive.open(csvs[0]) as member:
                    data = _bounded_read(member, what, f"{csvs[0].filename} inside it")
                return data, csvs[0].filename
    except RuntimeError as error:  # zipfile's "File ... is encrypted, password required"
        raise JobsError(
            f"{what} is a zip archive whose CSV is encrypted ({error}); extract it with its password "
            "(`unzip` asks for it) and pass the extracted CSV"
        ) from None
    except NotImplementedError:  # a compression method Python's zipfile lacks (Windows' Deflate64)
        raise JobsError(
            f"{what} is a zip archive compressed with a method Python cannot read (such as Deflate64, "
            "which Windows uses for large files); extract it (`unzip`, 7-Zip or Windows Explorer) and "
            "pass the extracted CSV"
        ) from None
    except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as error:
        raise JobsError(
            f"{what} looks like a zip archive but cannot be read ({error}); download it again, or "
            "extract it with another tool and pass the extracted CSV"
        ) from None
    if not members:
        raise JobsError(f"{what} is a zip archive with no files in it; pass the CSV file itself")
    names = [info.filename for info in members]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    if not csvs:
        raise JobsError(
            f"{what} is a zip archive with no .csv file in it (it holds {shown}); extract the data "
            f"(`unzip {path}`), save it as a CSV if it is not one, and pass that file"
        )
    first = csvs[0].filename
    raise JobsError(
        f"{what} is a zip archive with {len(csvs)} CSV files ({', '.join(i.filename for i in csvs[:10])}"
        f"{' ...' if len(csvs) > 10 else ''}); one is trained on: extract the one meant, e.g. "
        f"`unzip -j {path} '{first}'`, and pass it"
    )


def _decompressed(raw: bytes, kind: str, path: Path, what: str) -> bytes:
    try:
        with _opened(kind, io.BytesIO(raw)) as compressed:
            return _bounded_read(compressed, what, f"its {kind}-compressed content")
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:  # gzip.BadGzipFile is an OSError
        raise JobsError(
            f"{what} is {kind}-compressed but cannot be decompressed ({error or 'it ends early'}); "
            "download it again, or decompress it with another tool and pass the CSV"
        ) from None


def _opened(kind: str, stream: IO[bytes]) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream)  # several members one after another are one file (RFC 1952 2.2)
    return bz2.BZ2File(stream) if kind == "bzip2" else lzma.LZMAFile(stream)


def _bounded_read(stream: Any, what: str, part: str) -> bytes:
    """All of `stream`, read in chunks (one read of the whole bound would reserve it); JobsError past the bound."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > MAX_DECOMPRESSED_BYTES:
            limit = MAX_DECOMPRESSED_BYTES
            shown = f"{limit // 1024**3} GiB" if limit % 1024**3 == 0 else f"{limit // 1024**2} MiB"
            raise JobsError(
                f"{what}: {part} is more than {shown} once decompressed, more than is read into memory; "
                "decompress it yourself and pass a smaller sample of the rows"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _is_tar(raw: bytes) -> bool:
    return raw[257:262] == b"ustar"  # POSIX tar's header magic, at offset 257


def _format_advice(kind: str, path: Path, csv_reader: bool) -> str:
    """What the file is and how to get what we read from it; follows the file's name in a message."""
    instead = "a CSV" if csv_reader else "text"
    out = path.with_suffix(".csv").name if path.suffix.lower() != ".csv" else f"{path.stem}-converted.csv"
    pandas = 'python -c "import pandas as pd; pd.{reader}({path!r}{extra}).to_csv({out!r}, index=False)"'
    if kind in ("xlsx", "xls", "ods"):
        name = {
            "xlsx": "an Excel workbook (.xlsx)",
            "xls": "an Excel 97-2003 workbook (.xls)",
            "ods": "an OpenDocument spreadsheet (.ods)",
        }[kind]
        extra, needs = {"xlsx": ("", "openpyxl"), "xls": ("", "xlrd"), "ods": (", engine='odf'", "odfpy")}[kind]
        convert = pandas.format(reader="read_excel", path=str(path), extra=extra, out=out)
        return (
            f"is {name}, not {instead}; save its sheet as a CSV (Excel: File > Save As > "
            f'"CSV UTF-8 (Comma delimited)"; LibreOffice: Text CSV, UTF-8), or convert it: {convert} (needs {needs})'
        )
    if kind in ("parquet", "arrow"):
        reader = "read_parquet" if kind == "parquet" else "read_feather"
        convert = pandas.format(reader=reader, path=str(path), extra="", out=out)
        return f"is a {kind.capitalize()} file, not {instead}; convert it: {convert} (needs pyarrow)"
    if kind in _COMPRESSED or kind == "zip":
        command = {
            "zip": f"unzip {path}",
            "gzip": f"gunzip -k {path}",
            "bzip2": f"bunzip2 -k {path}",
            "xz": f"xz -dk {path}",
        }[kind]
        return f"is {kind}-compressed, not text; decompress it (`{command}`, or 7-Zip) and pass the file inside"
    if kind == "tar":
        return f"holds a tar archive, not a CSV; extract it (`tar -xf {path}`) and pass the CSV inside"
    if kind in ("zstd", "7z", "rar"):
        command = {"zstd": f"zstd -d {path}", "7z": f"7z x {path}", "rar": f"unrar x {path}"}[kind]
        also = " (zip, gzip, bzip2 and xz are read as they are)" if csv_reader else ""
        return (
            f"is {kind}-compressed, which is not read here{also}; decompress it (`{command}`) and pass what is inside"
        )
    name = {"pdf": "a PDF document", "sqlite": "an SQLite database"}.get(kind, f"a {kind} file")
    return f"is {name}, not text; export the data as a CSV and pass that file"


def refuse_url(path: Path, what: str) -> None:
    """Raise JobsError when `path` is a URL (http, https, azureml, wasbs, abfss, s3, ...), saying how to fetch it.

    Both targets read the file on this machine (its columns and values are checked before anything is
    sent), so a URL is downloaded first. The commands are documented ones: `curl -L -o`; for Azure
    Storage `azcopy copy` (learn.microsoft.com, storage/common/storage-use-azcopy-blobs-download); for an
    Azure ML data asset `az ml data download --name --version --download-path` (Azure ML CLI v2).
    """
    text = str(path)
    if Path(path).exists():
        return  # a local file whose name only looks like a URL
    reference = _ASSET_REFERENCE.match(text)
    found = _URL.match(text)
    if reference is None and (found is None or len(found["scheme"]) < 2):
        return
    if reference is not None:
        url, scheme, rest = text, "azureml", ""
    else:
        assert found is not None  # narrowed above
        scheme, rest = found["scheme"].lower(), found["rest"]
        url = f"{scheme}://{rest}"
    name = PurePosixPath(rest.split("?")[0]).name or "data.csv"
    what = what.replace(text, url)  # the name as typed, not as Path folded it
    kind = "an Azure ML data asset reference" if reference is not None else "a URL"
    start = (
        f"{what} is {kind}, not a file on this machine, and both targets read the file here (its columns "
        "and values are checked before anything is sent). "
    )
    asset = reference or re.search(r"/data/(?P<name>[^/]+)/versions/(?P<version>[^/?]+)", rest)
    if scheme == "azureml" and asset is not None:
        how = (
            f"Download the data asset first: `az ml data download --name {asset['name']} --version "
            f"{asset['version']} --download-path data-download` (with --resource-group and --workspace-name), "
            "then pass the CSV inside that folder"
        )
    elif scheme == "azureml":
        how = (
            "Download it from its datastore first (in the studio: Data > Datastores, or with `azcopy copy` "
            "from the datastore's storage account), then pass the downloaded file"
        )
    elif scheme in ("wasb", "wasbs", "abfs", "abfss") or re.match(r"[^/]+\.(blob|dfs)\.core\.windows\.net/", rest):
        https = _storage_https(scheme, rest)
        how = f"Download it first: `azcopy copy '{https}' {name}` (after `azcopy login`), then pass {name}"
    elif scheme in ("http", "https", "ftp"):
        how = f"Download it first: `curl -L -o {name} '{url}'`, then pass {name}"
    else:
        how = f"Download it with that storage's own tool (for {scheme}://), then pass the downloaded file"
    tail = " (a .zip or .gz of one CSV is read as it is)" if name.lower().endswith((".zip", ".gz")) else ""
    raise JobsError(start + how + tail)


def _storage_https(scheme: str, rest: str) -> str:
    """An Azure Storage URL as https: wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH is
    https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH (and abfss:// likewise on dfs.core.windows.net)."""
    if scheme in ("http", "https"):
        return f"{scheme}://{rest}"
    container, at, host_path = rest.partition("@")
    if not at:
        return f"https://{rest}"
    host, _, blob = host_path.partition("/")
    return f"https://{host}/{container}/{blob}"


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook that refuses a key given twice: JSON leaves its meaning open, and the endpoint
    (scoring/schema.py parse_body) answers 400 for it, so a file we read must not pick one silently."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def read_json(path: Path, what: str) -> Any:
    """The file's JSON value, read as by read_text.

    Raises JobsError when the file is empty, is not JSON (with the line and column), or has an object
    with a repeated key (the key named: the endpoint refuses those bodies too).
    """
    return parse_json(read_text(path, what), what)


def parse_json(text: str, what: str) -> Any:
    """JSON text (a file's, or a command's output) as read_json reads it; `what` names it in messages."""
    if not text.strip():
        raise JobsError(f"{what} is empty; expected a JSON document")
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys)
    except _RepeatedKey as repeated:
        raise JobsError(
            f"{what}: the key {str(repeated)[:100]!r} appears more than once in one object; which "
            "value is meant is ambiguous, so keep one"
        ) from None
    except RecursionError:
        raise JobsError(f"{what} nests arrays or objects too deeply") from None
    except json.JSONDecodeError as error:
        raise JobsError(f"{what} is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # an integer beyond Python's int-str conversion limit
        raise JobsError(f"{what} is not JSON we can read: {str(error)[:100]}") from None


def parse_json_lines(text: str, what: str, by_name: bool = False) -> list[tuple[int, Any]] | None:
    """JSON Lines text (jsonlines.org: one JSON value per line) as (line number, value); None when it is not.

    With `by_name` (a .jsonl or .ndjson file) the text is JSON Lines whatever it holds; otherwise it is
    when it has several lines, does not parse as one JSON document, and its first line parses alone
    (a pretty-printed document spans lines too, and then is left to parse_json). Blank lines are
    skipped. Raises JobsError for an empty file, or a line that is not JSON or repeats a key (the line named).
    """
    lines = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not by_name and (len(lines) < 2 or not _several_documents(text) or not _parses(lines[0][1])):
        return None
    if not lines:
        raise JobsError(f"{what} is empty; expected JSON Lines, one JSON record per line")
    values = []
    for number, line in lines:
        try:
            values.append((number, json.loads(line, object_pairs_hook=_no_repeated_keys)))
        except _RepeatedKey as repeated:
            raise JobsError(
                f"{what} line {number}: the key {str(repeated)[:100]!r} appears more than once in one object; "
                "which value is meant is ambiguous, so keep one"
            ) from None
        except json.JSONDecodeError as error:
            raise JobsError(
                f"{what} line {number} is not JSON ({error.msg} at column {error.colno}); in JSON Lines "
                "each line is one whole JSON record"
            ) from None
        except (RecursionError, ValueError):
            raise JobsError(
                f"{what} line {number} is not JSON we can read (nested too deeply, or a huge number)"
            ) from None
    return values


def _several_documents(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return error.msg == "Extra data"  # one value parsed, and more follows
    except (RecursionError, ValueError):
        return False
    return False


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (RecursionError, ValueError):  # JSONDecodeError is a ValueError
        return False
    return True


def read_csv_lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """Every non-blank row of a CSV file as (line number, cells), header first, read as by read_csv_text
    (so also from a .zip of one CSV, or a .gz, .bz2 or .xz file).

    The line number is where the row starts in the file (1 for the header), as an editor shows it.
    Empty header cells get pandas' names (`Unnamed: 0` for the first column), so that both targets,
    and every message, call a column by the same name. Raises JobsError for an empty file or one
    that is not CSV.
    """
    text = read_csv_text(path, what)
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    try:
        start = 1
        for row in reader:
            if row:
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as error:
        raise JobsError(f"{what} is not a readable CSV (line {reader.line_num}): {error}") from None
    if not rows:
        raise JobsError(f"{what} is empty; expected a CSV with a header row")
    rows[0] = (1, [cell or f"Unnamed: {index}" for index, cell in enumerate(rows[0][1])])
    return rows


def read_csv_rows(path: Path, what: str) -> list[list[str]]:
    """Every row of a CSV file as strings (header first); see read_csv_lines."""
    return [row for _, row in read_csv_lines(path, what)]


def normalized_csv(path: Path, what: str) -> str:
    """The CSV rewritten the way Azure ML's MLTable reader is sure to read it: UTF-8 without a BOM, LF
    line endings, empty header cells named as pandas names them (see read_csv_rows)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(read_csv_rows(path, what))
    return out.getvalue()


def staged_csv_name(path: Path) -> str:
    """The name for the CSV read from `path` when it is written out again (as the Azure target's MLTable
    copy of normalized_csv): heart.csv stays, heart.csv.gz and heart.zip become heart.csv, so that no
    reader takes the plain CSV for an archive by its name."""
    name = Path(path).name
    for suffix in (".gz", ".gzip", ".bz2", ".xz", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name if name.lower().endswith(".csv") else f"{name}.csv"
