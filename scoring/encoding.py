"""A request body sent compressed (`Content-Encoding: gzip`), decoded before its JSON is read, within a bound.

HTTP lets a client compress the body it sends and name the coding in `Content-Encoding` (RFC 9110
section 8.4); Azure's SDKs offer it for request payloads (azure-core, e.g. Azure/azure-sdk-for-java
issue 29571, "Support gzip request payload"). The inference server (azmlinfsrv 1.5.1,
`input_parsers.ObjectInput`) ignores the header and reads the compressed bytes as JSON, which ends in
"not UTF-8" or "not JSON". score.py's body guard calls `decoded_body` first.

Decoding is bounded: deflate shrinks a run of one byte about 1000 times, so a small body could
expand into gigabytes in the worker's memory (a "zip bomb"). A body whose decoded size passes
MAX_DECODED_BYTES is refused with 413 (RFC 9110 section 15.5.14, Content Too Large) as soon as the
bound is reached, without decoding the rest. A coding this module does not know is a 415 (RFC 9110
section 15.5.16: the status for an unsupported content coding) that names it and the ones accepted.

Standard library only: it runs on Azure's scoring image (Python 3.9).
"""

from __future__ import annotations

import zlib

# 1000 records (schema.MAX_RECORDS) of the lesson's request are about 300 KB of JSON; 16 MiB is 50
# times that and still a small share of a worker's memory.
MAX_DECODED_BYTES = 16 * 1024 * 1024
# At most this many codings stacked in one header ("gzip, gzip"): more is no real client's.
MAX_CODINGS = 4
ACCEPTED = ("gzip", "x-gzip", "deflate", "identity")
GZIP_MAGIC = b"\x1f\x8b"


class EncodingError(ValueError):
    """The body's content coding cannot be undone; `status` is the HTTP status to answer (400, 413 or 415)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def decoded_body(body: bytes, content_encoding: str | None, limit: int = MAX_DECODED_BYTES) -> bytes:
    """`body` with the codings named in `content_encoding` (the header's value, or None) undone, last first.

    Accepted codings: gzip (and its old name x-gzip; several gzip members one after another are one
    body, RFC 1952 section 2.2), deflate (the zlib format RFC 9110 names; a raw deflate stream, which
    some clients send, too) and identity. Raises EncodingError: 415 for any other coding, 413 when the
    decoded body passes `limit` bytes, 400 for data that is not what its coding says (or gzip data
    sent without the header, which would otherwise read as "not UTF-8 text").
    """
    codings = [part.strip().lower() for part in (content_encoding or "").split(",") if part.strip()]
    if len(codings) > MAX_CODINGS:
        raise EncodingError(f"Content-Encoding names {len(codings)} codings; at most {MAX_CODINGS} are undone", 415)
    unknown = [coding for coding in codings if coding not in ACCEPTED]
    if unknown:
        raise EncodingError(
            f"the body's Content-Encoding {', '.join(unknown)} is not supported; send the JSON uncompressed "
            f"or with Content-Encoding: gzip (accepted: {', '.join(ACCEPTED)})",
            415,
        )
    for coding in reversed(codings):  # the header lists them in the order they were applied
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, coding, limit)
        elif coding == "deflate":
            # RFC 9110 8.4.1.2 says zlib; a raw stream has no zlib header, and 0x78 starts every zlib one.
            body = _inflate(body, zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS, coding, limit)
    if set(codings) <= {"identity"} and body.startswith(GZIP_MAGIC):
        raise EncodingError(
            "the body is gzip-compressed data but the request has no Content-Encoding: gzip header; "
            "send that header with it, or send the JSON uncompressed",
            400,
        )
    return body


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    """Undo one deflate-based coding, stopping at `limit` decoded bytes (EncodingError 413 beyond)."""
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            # max_length bounds what one call may produce; the input not yet decoded waits in unconsumed_tail.
            chunk = inflater.decompress(rest, limit - size + 1)
            size += len(chunk)
            if size > limit or inflater.unconsumed_tail:
                raise EncodingError(
                    f"the body decompresses ({coding}) to more than {limit} bytes, the limit for a "
                    f"request; send at most {limit // (1024 * 1024)} MiB of JSON, or split the records "
                    "over several requests",
                    413,
                )
            out.append(chunk)
            if not inflater.eof:
                raise EncodingError(
                    f"the body's {coding} data ends early (truncated); send the whole compressed body", 400
                )
            rest = inflater.unused_data
            # Another gzip member may follow (RFC 1952 2.2); anything else after the stream is not the coding's.
            if not rest or not (wbits > zlib.MAX_WBITS and rest.startswith(GZIP_MAGIC)):
                break
    except zlib.error as error:
        raise EncodingError(
            f"the body is not valid {coding} data, as its Content-Encoding header says ({error}); "
            "compress the JSON with that coding, or send it uncompressed without the header",
            400,
        ) from None
    if rest:
        raise EncodingError(
            f"the body has {len(rest)} byte(s) after the end of its {coding} data; send the compressed JSON alone",
            400,
        )
    return b"".join(out)
