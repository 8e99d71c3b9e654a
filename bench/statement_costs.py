"""Where an ingest call spends its time, statement by statement (issue 11: "what the engine costs
per event, and where").

Runs N calls of one function on the benchmark database (bench/run.sh leaves it built), with
auto_explain timing every statement the call runs (nested ones included), and prints the
statements grouped by their first line: calls per event, milliseconds per event, share of the
call. The timings include auto_explain's own overhead, so read the shares, not the totals, and a
statement's time includes the statements it runs (a trigger's, a SQL function's).

    python3 bench/statement_costs.py [--port 25433] [--source onu] [--events 400]
"""

import argparse
import collections
import json
import random
import re

import psycopg2

from pgbench.templates import PAYLOADS, FUNCTIONS

DURATION = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*\n(.*)", re.S)


class Notices:
    """psycopg2 keeps 50 notices by default; this keeps every one until read."""

    def __init__(self):
        self.items = []

    def append(self, notice):
        self.items.append(notice)


def label(text):
    """A statement's name: its first 120 characters, comments dropped and whitespace collapsed."""
    lines = [line for line in text.strip().splitlines() if not line.strip().startswith("--")]
    return " ".join(" ".join(lines).split())[:120].replace("|", "/")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=25433)
    parser.add_argument("--source", choices=["onu", "kaifa", "callcenter", "scada"], default="onu")
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()

    conn = psycopg2.connect(f"host=127.0.0.1 port={args.port} user=postgres dbname=oms_bench")
    conn.notices = Notices()
    rng = random.Random()  # fresh event ids each run: a rerun must not measure redeliveries
    top_level = f"SELECT {FUNCTIONS[args.source]}("
    per_statement = collections.defaultdict(lambda: [0, 0.0])
    call_ms = 0.0
    with conn.cursor() as cur:
        cur.execute("LOAD 'auto_explain'")
        cur.execute("SET auto_explain.log_min_duration = 0")
        cur.execute("SET auto_explain.log_nested_statements = on")
        cur.execute("SET auto_explain.log_level = notice")
        cur.execute("SET auto_explain.log_format = json")
        cur.execute("SET client_min_messages = notice")
        for _ in range(args.events):
            values = {"onu": str(rng.randint(1000000, 1040287)), "meter": str(rng.randint(1, 161150)),
                      "e": str(rng.randint(1, 2**62)), "sec": str(rng.randint(0, 31535999))}
            payload = re.sub(r":(onu|meter|e|sec)\b", lambda m: values[m.group(1)], PAYLOADS[args.source])
            conn.notices.items.clear()
            cur.execute(f"SELECT {FUNCTIONS[args.source]}({payload})")
            conn.commit()
            for notice in conn.notices.items:
                found = DURATION.search(notice)
                if not found:
                    continue
                ms, text = found.group(1), json.loads(found.group(2))["Query Text"]
                if text.startswith(top_level):
                    call_ms += float(ms)
                else:
                    entry = per_statement[label(text)]
                    entry[0] += 1
                    entry[1] += float(ms)
    conn.close()

    events = args.events
    print(f"{events} calls of {FUNCTIONS[args.source]} (random {args.source} events, as the pgbench script): "
          f"{call_ms / events:.3f} ms a call under auto_explain\n")
    print("| statement (first line) | runs per event | ms per event | share of the call |")
    print("|---|---:|---:|---:|")
    for name, (runs, ms) in sorted(per_statement.items(), key=lambda item: -item[1][1]):
        print(f"| `{name}` | {runs / events:.2f} | {ms / events:.3f} | {100 * ms / call_ms:.1f} % |")
    nested = sum(ms for _, ms in per_statement.values())
    print(f"\nNested statements {nested / events:.3f} ms of {call_ms / events:.3f} ms a call "
          f"({100 * nested / call_ms:.0f} %); the rest is the call itself (decoding, SPI, subtransaction).")


if __name__ == "__main__":
    main()
