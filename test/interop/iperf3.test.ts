// iperf3 through burrow: an iperf3 server behind a tunnel, and `iperf3 -c` through the
// public port, normal and reverse (-R). iperf3 opens a control connection and a data
// connection to the same port, so both cross the tunnel as separate visitors. The JSON
// report must show no error and bytes both sent and received; the rate is printed, not
// asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, LOOPBACK, requireProgram, scoped, spawnTool, startDaemon, startTunnel } from './harness.ts';

interface Sum {
  bytes: number;
  bits_per_second: number;
}
interface Report {
  error?: string;
  end?: { sum_sent?: Sum; sum_received?: Sum };
}

test('iperf3: 3 s normal and reverse (-R) through the tunnel', async (t) => {
  const iperf3 = requireProgram('iperf3', 'iperf3');
  await scoped(async (use) => {
    const port = await freePort();
    use(await startDaemon(iperf3, ['--server', '--bind', LOOPBACK, '--port', String(port)], port));
    const { publicPort } = use(await startTunnel(port));

    for (const [name, extra] of [
      ['normal', []],
      ['reverse', ['--reverse']],
    ] as const) {
      await t.test(name, async () => {
        const args = [
          '--client',
          LOOPBACK,
          '--port',
          String(publicPort),
          '--time',
          '3',
          '--json',
          '--connect-timeout',
          '5000',
          ...extra,
        ];
        const { code, stdout, stderr } = await spawnTool(iperf3, args, { timeoutMs: 30_000, allowFailure: true });
        let report: Report;
        try {
          report = JSON.parse(stdout.toString()) as Report;
        } catch {
          assert.fail(`iperf3 printed no JSON report (exit ${code}); stdout: ${stdout.toString()} stderr: ${stderr}`);
        }
        assert.equal(report.error, undefined, `iperf3 reported an error (stderr: ${stderr})`);
        assert.equal(code, 0, `iperf3 exit code (stderr: ${stderr})`);
        const sent = report.end?.sum_sent;
        const received = report.end?.sum_received;
        assert.ok(sent !== undefined && sent.bytes > 0, `bytes sent: ${sent?.bytes}`);
        assert.ok(received !== undefined && received.bytes > 0, `bytes received: ${received?.bytes}`);
        t.diagnostic(
          `iperf3 ${name}: ${(received.bits_per_second / 8 / 1e6).toFixed(0)} MB/s received (${(received.bytes / 1e6).toFixed(0)} MB)`,
        );
      });
    }
  });
});
