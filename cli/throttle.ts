// A cap on repeated log lines: a port scanner or a flood of visitors to a dead local
// service must not turn stderr into a firehose.

/** Wraps `print` so that at most `limit` lines go out per `windowMs`; the lines held back
 * are counted, and the count is printed when the next window opens. */
export function throttled(
  print: (line: string) => void,
  limit: number,
  windowMs: number,
  now: () => number = Date.now,
): (line: string) => void {
  let windowStart = -Infinity;
  let printed = 0;
  let held = 0;
  return (line) => {
    const time = now();
    if (time - windowStart >= windowMs) {
      if (held > 0) print(`(${held} similar line${held === 1 ? '' : 's'} not shown)`);
      windowStart = time;
      printed = 0;
      held = 0;
    }
    if (printed < limit) {
      printed++;
      print(line);
      return;
    }
    if (held++ === 0) print(`(more of these in the next ${Math.round(windowMs / 1000)} s are counted, not shown)`);
  };
}
