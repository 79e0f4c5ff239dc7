#!/usr/bin/env python3
"""The baseline prom2om is measured against: a plain line-by-line dump -> OpenMetrics converter in
Python, as the user's write-up did it (regex per line, no sorting). Reads a dump on stdin, writes
OpenMetrics on stdout. Not used by prom2om; only by benches/pipeline.sh for comparison."""
import re
import sys

LINE = re.compile(rb'^\{(.*)\} (\S+) (-?\d+)$')
PAIR = re.compile(rb'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')

out = sys.stdout.buffer
for line in sys.stdin.buffer:
    m = LINE.match(line.rstrip(b'\n'))
    if not m:
        continue
    labels, value, ts = m.groups()
    name = b''
    rest = []
    for k, v in PAIR.findall(labels):
        if k == b'__name__':
            name = v
        else:
            rest.append(k + b'="' + v + b'"')
    t = int(ts)
    out.write(name + (b'{' + b','.join(rest) + b'}' if rest else b'') + b' ' + value + b' '
              + (b'%d.%03d' % (t // 1000, t % 1000)) + b'\n')
out.write(b'# EOF\n')
