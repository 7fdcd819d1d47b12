#!/usr/bin/env python3
"""Benchmark report ingestion, and the cost of refusing hostile reports.

    .venv/bin/python bench/reports_bench.py [--reports 10000] [--bomb-mib 1024]

1. ``--reports`` report files written to a temporary directory (a realistic mix: 40 % DMARC XML with 1-20
   records, 20 % gzipped DMARC, 15 % zipped DMARC, 10 % TLS-RPT JSON, 5 % gzipped TLS-RPT, 10 % whole mails
   with a base64 gzip attachment), then ``mailpulse scan --reports DIR`` run as a child process: wall time
   and its peak RSS (``ru_maxrss`` of the child). Goal: under 60 s and 100 MB.
2. A gzip bomb and a zip bomb of ``--bomb-mib`` MiB of zeros (about 1 MB each on disk) and a billion-laughs
   XML, each refused by ``parse_file`` in a fresh child process: the time of the call and the growth of the
   child's peak RSS across it (the bomb's compressed bytes are loaded before). Goal: under 1 s and 50 MB.

A benchmark, not a test: it prints measured figures and judges nothing.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = 86400
START = 1764460800


def dmarc(rng: random.Random, i: int) -> str:
    records = []
    for _ in range(rng.randint(1, 20)):
        ip = f"192.0.2.{rng.randrange(256)}" if rng.random() < 0.7 else f"198.51.100.{rng.randrange(256)}"
        dkim, spf = rng.choice(["pass", "fail"]), rng.choice(["pass", "fail"])
        records.append(
            f"<record><row><source_ip>{ip}</source_ip><count>{rng.randint(1, 5000)}</count><policy_evaluated>"
            f"<disposition>{rng.choice(['none', 'quarantine', 'reject'])}</disposition><dkim>{dkim}</dkim>"
            f"<spf>{spf}</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>"
            f"</identifiers><auth_results><dkim><domain>example.com</domain><result>{dkim}</result>"
            f"<selector>s1</selector></dkim><spf><domain>example.com</domain><result>{spf}</result></spf>"
            f"</auth_results></record>"
        )
    org = rng.choice(["google.com", "Enterprise Outlook", "Yahoo", "Mail.Ru", "zoho.com", "Small ISP"])
    begin = START - rng.randrange(30) * DAY
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><feedback><report_metadata><org_name>{org}</org_name>'
        f"<email>dmarc@reporter{i % 50}.example</email><report_id>bench-{i}</report_id><date_range>"
        f"<begin>{begin}</begin><end>{begin + DAY - 1}</end></date_range></report_metadata><policy_published>"
        f"<domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>"
        f"</policy_published>{''.join(records)}</feedback>"
    )


def tlsrpt(rng: random.Random, i: int) -> str:
    return json.dumps({
        "organization-name": rng.choice(["Google Inc.", "Microsoft Corporation"]), "report-id": f"tls-{i}",
        "date-range": {"start-datetime": "2025-11-30T00:00:00Z", "end-datetime": "2025-11-30T23:59:59Z"},
        "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
                      "summary": {"total-successful-session-count": rng.randint(0, 10**5),
                                  "total-failure-session-count": 3},
                      "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 3}]}],
    })  # fmt: skip


def write_reports(root: Path, n: int) -> int:
    rng = random.Random(1)
    total = 0
    for i in range(n):
        r = rng.random()
        if r < 0.4:
            name, data = f"r{i}.xml", dmarc(rng, i).encode()
        elif r < 0.6:
            name, data = f"r{i}.xml.gz", gzip.compress(dmarc(rng, i).encode(), mtime=0)
        elif r < 0.75:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"r{i}.xml", dmarc(rng, i))
            name, data = f"r{i}.zip", buf.getvalue()
        elif r < 0.85:
            name, data = f"r{i}.json", tlsrpt(rng, i).encode()
        elif r < 0.9:
            name, data = f"r{i}.json.gz", gzip.compress(tlsrpt(rng, i).encode(), mtime=0)
        else:
            attachment = base64.encodebytes(gzip.compress(dmarc(rng, i).encode(), mtime=0)).decode()
            name, data = (
                f"r{i}.eml",
                (
                    "From: dmarcreport@microsoft.com\r\nTo: rua@example.com\r\nSubject: Report\r\n"
                    f"Message-ID: <{i}@bench>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                    "--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n--b\r\nContent-Type: application/octet-stream; "
                    f'name="r{i}.xml.gz"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--b--\r\n'
                ).encode(),
            )
        (root / name).write_bytes(data)
        total += len(data)
    return total


def scan_child(root: Path) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "scan", "--no-progress", "--reports", str(root)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode:
        raise SystemExit(err.decode()[-2000:])
    ingested = [line for line in out.decode().splitlines() if line.startswith("mailpulse_reports_ingested_total")]
    return elapsed, rss, "; ".join(ingested)


CHILD = """
import json, resource, sys, time
from mailpulse.parsers.reports import parse_file
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = parse_file(data, time.time())
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "rss_before_mb": before / 1024, "rss_growth_mb": (after - before) / 1024,
                  "result": [getattr(r, "reason", "") or r.kind for r in result]}))
"""


def bombs(root: Path, mib: int) -> dict[str, Path]:
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz = root / "bomb.xml.gz"
    gz.write_bytes(b"".join([*(c.compress(chunk) for _ in range(mib)), c.flush()]))
    zp = root / "bomb.zip"
    with (
        zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("bomb.xml", "w", force_zip64=True) as f,
    ):
        for _ in range(mib):
            f.write(chunk)
    lol = root / "laughs.xml"
    lol.write_text('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">' for i in range(1, 10)
    ) + "]><feedback>&lol9;</feedback>")  # fmt: skip
    return {"gzip bomb": gz, "zip bomb": zp, "billion laughs": lol}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--bomb-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "reports"
        root.mkdir()
        size = write_reports(root, args.reports)
        elapsed, rss, ingested = scan_child(root)
        print(f"{args.reports} reports ({size / 1e6:.1f} MB on disk): scan --reports {elapsed:.1f} s wall, "
              f"peak RSS {rss:.1f} MB; {ingested}")  # fmt: skip
        for name, path in bombs(Path(tmp), args.bomb_mib).items():
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=REPO, capture_output=True, check=True)
            m = json.loads(out.stdout)
            print(f"{name} ({path.stat().st_size / 1e6:.2f} MB on disk, {args.bomb_mib} MiB inflated): "
                  f"refused ({', '.join(m['result'])}) in {m['seconds'] * 1000:.1f} ms, peak RSS grew "
                  f"{m['rss_growth_mb']:.1f} MB (from {m['rss_before_mb']:.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
