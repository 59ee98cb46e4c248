"""A test stand-in for a ClickHouse server's HTTP interface, with the real engine behind it.

A child process opens one chDB engine (ClickHouse in process) on a data directory and serves
what clickhouse-connect's HttpClient sends to port 8123, so a test can point the pipeline at
`http://127.0.0.1:PORT`, stop the process (connections are refused) and start it again on
the same port and data:

    python tests/clickhouse_http.py --data DIR --port PORT     # serves until SIGTERM

    with ClickHouseHttp(tmp_path / "ch") as server:
        warehouse = Warehouse(server.dsn)
        server.stop()   # the warehouse is away ...
        server.start()  # ... and back, with its data

Served: `GET /ping`; one statement per request, the SQL in the `query` URL argument and/or
the body (or multipart form fields, as the client sends large parameters); results in the
statement's FORMAT clause, else `default_format`, else TabSeparated; `INSERT … FORMAT f`
followed by its data (read through `INSERT … FROM INFILE`); request bodies with
Content-Encoding lz4, zstd, gzip or deflate, plain or chunked; `param_NAME` arguments bound
by the engine; every other URL argument that is not transport-only is a ClickHouse setting
for that statement (so `insert_deduplication_token` reaches the INSERT); `database`; errors
as ClickHouse writes them (`Code: N. DB::Exception: …`, X-ClickHouse-Exception-Code, an
HTTP status from the code).

Not implemented: authentication (credentials are ignored), sessions (one engine, one
session: `session_id` is ignored and temporary tables or SET persist across requests),
response compression (answers are sent uncompressed, which HTTP allows), ClickHouse's own
compressed format (`compress=1` / `decompress=1`), `client_protocol_version` (the client
then reads protocol 0), progress headers, streaming (a result is built whole before it is
sent), query cancellation, external data (form files).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from pipeline.runtime.broker import free_port
from pipeline.runtime.process import ChildService, stop_process

# URL arguments the HTTP layer consumes: not ClickHouse settings for the engine.
TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "role",
        "buffer_size",
        "wait_end_of_query",
        "compress",
        "decompress",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "client_protocol_version",
    }
)
# ClickHouse error codes and the HTTP status a server answers them with (others: 500).
NOT_IMPLEMENTED, STD_EXCEPTION = 48, 1001
HTTP_STATUS = {
    6: 400,  # CANNOT_PARSE_TEXT
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    36: 400,  # BAD_ARGUMENTS
    43: 400,  # ILLEGAL_TYPE_OF_ARGUMENT
    46: 404,  # UNKNOWN_FUNCTION
    47: 400,  # UNKNOWN_IDENTIFIER
    50: 404,  # UNKNOWN_TYPE
    53: 400,  # TYPE_MISMATCH
    60: 404,  # UNKNOWN_TABLE
    62: 400,  # SYNTAX_ERROR
    73: 404,  # UNKNOWN_FORMAT
    81: 404,  # UNKNOWN_DATABASE
    115: 400,  # UNKNOWN_SETTING
}
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\.")
# A statement's own FORMAT clause, at its end.
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
# An INSERT whose data follows its FORMAT clause (the data starts after one line break).
_INSERT_WITH_DATA = re.compile(
    rb"^\s*(?P<head>INSERT\s+INTO\s.*?)(?P<format>\bFORMAT\s+(?P<name>\w+))[ \t]*(?:\r?\n)?",
    re.IGNORECASE | re.DOTALL,
)


class ServerError(Exception):
    """An error as ClickHouse reports it: its code and its `Code: N. DB::Exception: …` text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_engine(cls, exc: Exception) -> ServerError:
        """chDB's exception says `… Code: N. DB::Exception: …`; any other is a std::exception."""
        text = str(exc)
        start = text.find("Code: ")
        text = text[start:].strip() if start >= 0 else text.strip()
        code = _CODE.match(text)
        if code is None:
            return cls(STD_EXCEPTION, f"Code: {STD_EXCEPTION}. DB::Exception: {text}")
        return cls(int(code.group(1)), text)


# -- the child process: one engine, served over HTTP ---------------------------------------------


class Engine:
    """The one chDB engine of the process; one statement at a time. The session's settings and
    database are changed only where a request needs others than the last one."""

    def __init__(self, data: Path) -> None:
        import chdb  # only the child process opens the engine

        self._conn = chdb.connect(str(data.resolve()))
        self._lock = threading.Lock()
        self._settings: dict[str, str] = {}
        self._database: str | None = None
        self.version = self._conn.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        self.timezone = (
            self._conn.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        )

    def run(
        self,
        sql: str,
        fmt: str,
        params: Mapping[str, str],
        settings: Mapping[str, str],
        database: str,
    ) -> Any:
        """The chDB result of one statement, in `fmt` unless the statement names its own."""
        with self._lock:
            try:
                self._use(database)
                self._set(settings)
                return self._conn.query(sql, fmt, params=dict(params))
            except ServerError:
                raise
            except Exception as exc:
                raise ServerError.from_engine(exc) from None

    def _use(self, database: str) -> None:
        if database != self._database:
            quoted = "`" + database.replace("\\", "\\\\").replace("`", "\\`") + "`"
            self._conn.query(f"USE {quoted}", "TabSeparated")
            self._database = database

    def _set(self, settings: Mapping[str, str]) -> None:
        for name in [name for name in self._settings if name not in settings]:
            self._conn.query(f"SET {name} = DEFAULT", "TabSeparated")
            del self._settings[name]
        for name, value in settings.items():
            if self._settings.get(name) == value:
                continue
            if not _SETTING_NAME.match(name):
                raise ServerError(115, f"Code: 115. DB::Exception: Unknown setting '{name}'")
            literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            self._conn.query(f"SET {name} = {literal}", "TabSeparated")
            self._settings[name] = value

    def close(self) -> None:
        with self._lock:  # waits for a statement still running
            self._conn.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ClickHouse: the client pools connections
    server: Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is noise in a test's output

    def _handle(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/ping":
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        args = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = args.get("query_id") or str(uuid.uuid4())
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "clickhouse-http (chDB)",
        }
        try:
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                args.update(_form_fields(content_type, body))
                body = b""
            if not args.get("query") and not body and url.path.rstrip("/") == "":
                self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            answer, fmt, summary = self._execute(args, body)
        except Exception as exc:  # a corrupt body too: the client gets an answer, never a reset
            error = exc if isinstance(exc, ServerError) else ServerError.from_engine(exc)
            headers["X-ClickHouse-Exception-Code"] = str(error.code)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            message = f"{error} (version {self.server.engine.version})\n".encode()
            self._send(HTTP_STATUS.get(error.code, 500), message, headers)
            return
        if fmt is not None:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = CONTENT_TYPES.get(fmt, "application/octet-stream")
        headers["X-ClickHouse-Summary"] = json.dumps(summary)
        self._send(200, answer, headers)

    def _execute(
        self, args: dict[str, str], body: bytes
    ) -> tuple[bytes, str | None, dict[str, str]]:
        """The answer, its format (None: the statement has no result) and the summary."""
        for name in ("compress", "decompress"):
            if args.get(name, "0") not in ("", "0"):
                raise ServerError(
                    NOT_IMPLEMENTED,
                    f"Code: {NOT_IMPLEMENTED}. DB::Exception: {name}=1 (ClickHouse's own "
                    "compressed format) is not implemented by this test server",
                )
        params = {name[6:]: value for name, value in args.items() if name.startswith("param_")}
        settings = {
            name: value
            for name, value in args.items()
            if name not in TRANSPORT and not name.startswith("param_")
        }
        database = args.get("database") or "default"
        query = args.get("query", "").encode()
        # ClickHouse reads the URL's query, then the body: for an INSERT, the body is its data.
        text = query + b"\n" + body if query and body else query or body
        insert = _INSERT_WITH_DATA.match(text)
        engine = self.server.engine
        if insert is not None:
            data = text[insert.end() :]
            with tempfile.NamedTemporaryFile(suffix=".insert") as file:
                file.write(data)
                file.flush()
                path = "'" + file.name.replace("\\", "\\\\").replace("'", "\\'") + "'"
                sql = f"{insert['head'].decode()} FROM INFILE {path} {insert['format'].decode()}"
                result = engine.run(sql, "TabSeparated", params, settings, database)
            return b"", None, _summary(result, written=True)
        try:
            sql = text.decode()
        except UnicodeDecodeError:
            raise ServerError(27, "Code: 27. DB::Exception: the query is not UTF-8 text") from None
        named = _TRAILING_FORMAT.search(sql)
        if named is not None:
            result = engine.run(sql, named[1], params, settings, database)
            return result.bytes() or b"", named[1], _summary(result)
        fmt = args.get("default_format") or "TabSeparated"
        if fmt != "TabSeparated":
            result = engine.run(sql, fmt, params, settings, database)
            answer = result.bytes() or b""
            return answer, fmt if answer else None, _summary(result)
        # A statement with a result set writes at least its names line; one without (DDL, SET)
        # writes nothing. The names line tells ClickHouse's X-ClickHouse-Format header apart.
        result = engine.run(sql, "TabSeparatedWithNames", params, settings, database)
        answer = result.bytes() or b""
        if not answer:
            return b"", None, _summary(result)
        return answer[answer.find(b"\n") + 1 :], fmt, _summary(result)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], engine: Engine) -> None:
        self.engine = engine
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (a killed worker) is not the server's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _decompress(body: bytes, encoding: str) -> bytes:
    """A request body as sent with Content-Encoding; the client compresses each block of an
    insert on its own, so a body can be several frames (gzip members) one after another."""
    encoding = encoding.strip().lower()
    if not body or encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14
        except ImportError:
            from backports import zstd
        return zstd.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        frames = []
        while body:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            frames.append(decompressor.decompress(body))
            body = decompressor.unused_data
        return b"".join(frames)
    raise ServerError(
        NOT_IMPLEMENTED,
        f"Code: {NOT_IMPLEMENTED}. DB::Exception: Content-Encoding {encoding} is not "
        "implemented by this test server",
    )


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (the query and its parameters)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise ServerError(
                NOT_IMPLEMENTED,
                f"Code: {NOT_IMPLEMENTED}. DB::Exception: external data is not implemented "
                "by this test server",
            )
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _summary(result: Any, written: bool = False) -> dict[str, str]:
    """X-ClickHouse-Summary: an INFILE insert reads exactly the rows it writes."""
    kind = "written" if written else "read"
    return {
        f"{kind}_rows": str(result.rows_read()),
        f"{kind}_bytes": str(result.bytes_read()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def serve(data: Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve the engine on `data` until SIGTERM (or SIGINT); then close it."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    data.mkdir(parents=True, exist_ok=True)
    engine = Engine(data)
    server = Server((host, port), engine)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        engine.close()


# -- the test side: the child process, started and stopped ---------------------------------------


class ClickHouseHttp(ChildService):
    """A ClickHouse HTTP interface on a loopback port (chosen once: a restart keeps it), served
    by a child process on `data`, which survives the process."""

    def __init__(self, data: Path, port: int | None = None, startup_timeout: float = 60.0) -> None:
        self.data = Path(data).resolve()
        self.port = port or free_port()
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the server (if it is not running) and wait until it answers /ping."""
        if self.running:
            return self
        command = [sys.executable, __file__, "--data", str(self.data), "--port", str(self.port)]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise RuntimeError(
                    f"the ClickHouse HTTP test server on {self.data} exited ({code})"
                )
            if _pong(self.port):
                return self
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"the ClickHouse HTTP test server did not answer on {self.dsn}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGTERM (the engine closes), or with `kill` SIGKILL (a crash).
        Returns once the process is gone, so the port refuses connections."""
        stop_process(self._process, timeout=30, kill=kill)
        self._process = None


def _pong(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        return response.status == 200 and response.read() == b"Ok.\n"
    except OSError:
        return False
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the engine's data directory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    serve(args.data, args.port, args.host)


if __name__ == "__main__":
    main()
