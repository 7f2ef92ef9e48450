#!/usr/bin/env python3
"""How the spin gate sees the host: the share of 4 ms windows whose PSI cpu
"some" stall share is above 20 % (spinning off) or below 5 % (spinning may
come back), platform/systrap/systrap_handoff.h's ContentionGauge (kHigh,
kLow, kContentionPeriodNs), over SECONDS (default 5).

    python3 bench/psi_windows.py [SECONDS]
"""
import sys
import time


def some_total_us():
    with open("/proc/pressure/cpu") as f:
        return int(f.readline().split("total=")[1])


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    high = low = n = 0
    t0 = last_t = time.monotonic()
    last = some_total_us()
    while time.monotonic() - t0 < secs:
        time.sleep(0.004)
        now, v = time.monotonic(), some_total_us()
        share = (v - last) / ((now - last_t) * 1e6)
        last, last_t = v, now
        n += 1
        if share > 0.20:
            high += 1
        elif share < 0.05:
            low += 1
    print(f"4 ms windows: {n}; stalled > 20 %: {high} ({100 * high / n:.0f} %); "
          f"< 5 %: {low} ({100 * low / n:.0f} %)")


if __name__ == "__main__":
    main()
