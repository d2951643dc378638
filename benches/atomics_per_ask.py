#!/usr/bin/env python3
"""Atomic read-modify-writes per ask, counted exactly with callgrind.

Runs a counting bench binary (`ask_instructions`) under callgrind twice, with 0 and with N
asks, and counts the executed instructions of the binary that are atomic read-modify-writes
on x86-64: every `lock`-prefixed instruction and every `xchg` with a memory operand (implicitly
locked). The difference divided by N is the count per ask, with the functions they are in.

    cargo bench --bench ask_instructions --no-run
    python3 benches/atomics_per_ask.py target/release/deps/ask_instructions-HASH governed 2000

Needs valgrind, objdump and nm. Only the bench binary's own code is counted (Rust code is
linked into it statically; libc's allocator takes no atomic on a current-thread runtime).
"""

import collections
import re
import subprocess
import sys
import tempfile


def locked_instructions(binary):
    """Addresses of the binary's atomic read-modify-writes, with their function's name."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    locked, function = {}, None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:", line)
        if header:
            function = header.group(1)
            continue
        instruction = re.match(r"^\s+([0-9a-f]+):\s+(.*)", line)
        if instruction:
            text = instruction.group(2)
            if text.startswith("lock ") or (text.startswith("xchg") and "(" in text):
                locked[int(instruction.group(1), 16)] = function
    return locked


def executions(binary, mode, asks):
    """How often each instruction address of `binary` ran (callgrind, per-instruction dump)."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--dump-line=no",
             f"--callgrind-out-file={out.name}", binary, mode, str(asks)],
            capture_output=True, check=True,
        )
        return parse(open(out.name).read(), binary.rsplit("/", 1)[-1])


def parse(profile, binary_name):
    """Instruction counts per address in the object named `binary_name`."""
    counts = collections.Counter()
    objects, current_object, position, after_calls = {}, None, 0, False
    for line in profile.splitlines():
        named = re.match(r"^c?ob=\((\d+)\)(?: (.*))?", line)
        if named:
            if named.group(2):
                objects[named.group(1)] = named.group(2)
            if line.startswith("ob="):
                current_object = objects.get(named.group(1))
            continue
        if line.startswith("calls="):
            after_calls = True  # the next cost line is the call's inclusive cost
            continue
        cost = re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s+(\d+)", line)
        if cost:
            where = cost.group(1)
            if where.startswith("0x"):
                position = int(where, 16)
            elif where != "*":
                position += int(where)
            if after_calls:
                after_calls = False
            elif current_object and current_object.endswith(binary_name):
                counts[position] += int(cost.group(2))
    return counts


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, mode, asks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    locked = locked_instructions(binary)
    baseline, measured = executions(binary, mode, 0), executions(binary, mode, asks)
    by_function = collections.Counter()
    for address, function in locked.items():
        by_function[function] += measured[address] - baseline[address]
    print(f"{mode}: {sum(by_function.values()) / asks:.1f} atomic read-modify-writes per ask")
    for function, count in by_function.most_common():
        if count / asks >= 0.5:
            print(f"{count / asks:6.1f}  {function[:140]}")


if __name__ == "__main__":
    main()
