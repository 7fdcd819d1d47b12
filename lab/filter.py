"""The MX's content filter: a tiny SMTP proxy in the amavis position (stdlib only, run as a lab daemon).

Postfix hands every message the MX accepted to this filter (`content_filter = scan:[127.0.0.1]:PORT`);
the filter adds one header, then re-injects the message over SMTP into the MX's re-injection smtpd
(`postfix/10025/smtpd`, no filter there) and answers Postfix with the downstream reply, the way amavis
does: `250 2.0.0 from MTA([127.0.0.1]:PORT): 250 2.0.0 Ok: queued as NEWID`. So the MX log shows one
message under two queue IDs linked by `queued as`, exactly like a real amavis setup.

    python3 lab/filter.py --listen PORT --next PORT --pid-file FILE --log-file FILE

XFORWARD is offered to Postfix and replayed downstream, so the re-injection smtpd logs the original
client. Bounded: one thread per connection, Postfix limits the connections (maxproc of `scan`).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socketserver
import sys
import time

HOST = "127.0.0.1"
MAX_MESSAGE = 50 * 1024 * 1024
TIMEOUT_S = 60.0


class Session(socketserver.StreamRequestHandler):
    timeout = TIMEOUT_S
    server: FilterServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply(f"220 {self.server.name} ESMTP lab content filter")
        mail_from: str | None = None
        params: list[str] = []
        rcpts: list[str] = []
        xforward: list[str] = []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.reply(f"250-{self.server.name}\r\n250-8BITMIME\r\n250-XFORWARD NAME ADDR PROTO HELO SOURCE")
                self.reply(f"250 SIZE {MAX_MESSAGE}")
            elif verb == "XFORWARD":
                xforward.append(arg)
                self.reply("250 2.0.0 Ok")
            elif verb == "MAIL":
                addr, _, rest = arg.partition(">")
                mail_from = addr.split("<", 1)[-1]
                params = [p for p in rest.split() if p.upper().startswith("BODY=")]
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(arg.split("<", 1)[-1].split(">", 1)[0])
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    self.reply("503 5.5.1 Error: need MAIL and RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    return
                if len(data) > MAX_MESSAGE:
                    self.reply("552 5.3.4 Error: message too big for the lab filter")
                else:
                    self.reply(self.server.pass_on(mail_from, params, rcpts, xforward, data))
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts, xforward = None, [], []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")

    def _read_data(self) -> bytes | None:
        """The message up to the lone dot, unstuffed; past MAX_MESSAGE only a marker of the excess is kept
        (the caller refuses it), so memory stays bounded."""
        lines: list[bytes] = []
        size = 0
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return None
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines) if size <= MAX_MESSAGE else b"\0" * (MAX_MESSAGE + 1)
            if raw.startswith(b"."):
                raw = raw[1:]  # dot-unstuffing
            size += len(raw)
            if size <= MAX_MESSAGE:
                lines.append(raw)


class FilterServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, listen: int, next_port: int, log: str) -> None:
        super().__init__((HOST, listen), Session)
        self.next_port = next_port
        self.name = "filter.mx.example.test"
        self.log_path = log

    def log(self, text: str) -> None:
        stamp = time.strftime("%b %d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} mx lab-filter[{os.getpid()}]: {text}\n")

    def pass_on(self, mail_from: str, params: list[str], rcpts: list[str], xforward: list[str], data: bytes) -> str:
        """Re-inject downstream; return the reply for Postfix (the downstream's, amavis-style)."""
        data = f"X-Lab-Filter: passed by lab/filter.py on {self.name}\r\n".encode() + data
        where = f"MTA([{HOST}]:{self.next_port})"
        try:
            with smtplib.SMTP(HOST, self.next_port, local_hostname=self.name, timeout=TIMEOUT_S) as conn:
                conn.ehlo()
                if conn.has_extn("xforward"):
                    for attrs in xforward:
                        conn.docmd("XFORWARD", attrs)
                code, text = conn.mail(mail_from, params)
                if code >= 300:
                    return self._refused(code, text, mail_from, rcpts, where)
                for rcpt in rcpts:
                    code, text = conn.rcpt(rcpt)
                    if code >= 300:
                        return self._refused(code, text, mail_from, rcpts, where)
                code, text = conn.data(data)
        except (OSError, smtplib.SMTPException) as exc:
            self.log(f"TEMPFAIL <{mail_from}> -> {','.join(rcpts)}: {exc}")
            return f"451 4.3.0 lab filter: re-injection failed: {exc}"
        reply = _one_line(text)
        if code >= 300:
            return self._refused(code, text, mail_from, rcpts, where)
        queued = reply.rsplit("queued as ", 1)[-1] if "queued as " in reply else "?"
        self.log(f"Passed CLEAN <{mail_from}> -> {','.join(f'<{r}>' for r in rcpts)}, queued_as: {queued}")
        return f"250 2.0.0 from {where}: {code} {reply}"

    def _refused(self, code: int, text: bytes, mail_from: str, rcpts: list[str], where: str) -> str:
        reply = _one_line(text)
        self.log(f"REFUSED <{mail_from}> -> {','.join(rcpts)}: {code} {reply}")
        return f"{451 if code < 500 else 554} {'4.3.0' if code < 500 else '5.3.0'} from {where}: {code} {reply}"


def _one_line(text: bytes) -> str:
    """A downstream reply (smtplib joins multi-line replies with newlines) as one reply line."""
    return " ".join(text.decode("utf-8", "replace").split())


def _daemonize(pid_file: str) -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    with open(pid_file, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--next", type=int, required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--log-file", required=True)
    args = ap.parse_args(argv)
    server = FilterServer(args.listen, args.next, args.log_file)  # bind before detaching: errors show
    _daemonize(args.pid_file)
    server.log(f"listening on {HOST}:{args.listen}, re-injecting into {HOST}:{args.next}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
