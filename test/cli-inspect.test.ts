// `burrow client --inspect` / `--no-inspect`: the flag and its variable, and a real client
// process that serves its inspector and says where.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { resolveInspect } from '../cli/inspect.ts';
import { textLines } from '../cli/output.ts';
import { UsageError } from '../cli/usage-error.ts';
import { killAll, LISTENING, loopbackClientArgs, startCli, waitForOutput, type Cli } from './child.ts';
import { HOST, within } from './helpers.ts';
import { echoHandler, localService, visit } from './http-rig.ts';

describe('--inspect and BURROW_INSPECT', () => {
  test('its line says when the port asked for was taken', () => {
    const at = new Date(2026, 11, 2, 12, 0, 0);
    assert.deepEqual(textLines({ event: 'inspector', url: 'http://127.0.0.1:4041/', busy: 4040 }, at), [
      { stream: 'stdout', line: 'Inspector http://127.0.0.1:4041/ (port 4040 is taken)' },
    ]);
    assert.deepEqual(textLines({ event: 'inspector', url: 'http://127.0.0.1:4040/' }, at), [
      { stream: 'stdout', line: 'Inspector http://127.0.0.1:4040/' },
    ]);
  });

  test('on by default at 127.0.0.1:4040; a bare port is loopback; --no-inspect, 0 or off turn it off', () => {
    assert.deepEqual(resolveInspect({}, {}), { host: '127.0.0.1', port: 4040 });
    assert.deepEqual(resolveInspect({ inspect: '5050' }, {}), { host: '127.0.0.1', port: 5050 });
    assert.deepEqual(resolveInspect({ inspect: '0.0.0.0:5050' }, {}), { host: '0.0.0.0', port: 5050 });
    assert.deepEqual(resolveInspect({}, { BURROW_INSPECT: '[::1]:5050' }), { host: '::1', port: 5050 });
    assert.equal(resolveInspect({ inspect: false }, {}), undefined);
    assert.equal(resolveInspect({}, { BURROW_INSPECT: '0' }), undefined);
    assert.equal(resolveInspect({}, { BURROW_INSPECT: 'off' }), undefined);
    assert.deepEqual(resolveInspect({ inspect: '6060' }, { BURROW_INSPECT: '0' }), { host: '127.0.0.1', port: 6060 });
  });

  test('anything else is a usage error', () => {
    assert.throws(() => resolveInspect({ inspect: 'everywhere' }, {}), UsageError);
    assert.throws(() => resolveInspect({}, { BURROW_INSPECT: '70000' }), /BURROW_INSPECT: "70000" is not PORT/);
  });
});

test('a client process serves its inspector, prints its URL, and the API shows its requests', async () => {
  const live = new Set<Cli>();
  const service = await localService(echoHandler('cli'));
  try {
    const server = startCli(
      ['server', '--bind', HOST, '--control-port', '0', '--data-port', '0', '--http-port', '0'],
      {},
      live,
    );
    const [, controlPort = '', dataPort = ''] = await waitForOutput(server, 'stdout', LISTENING, 'the server');
    const [, httpPort = ''] = await waitForOutput(server, 'stdout', /http:\/\/\*\.localhost:(\d+)/, 'its HTTP port');
    const options = ['--http', '--name', 'seen', '--no-state-file', '--inspect', `${HOST}:0`];
    const client = startCli(loopbackClientArgs(service.port, { controlPort, dataPort }, options), {}, live);
    const [, url = ''] = await waitForOutput(client, 'stdout', /^Inspector (http:\/\/\S+)$/m, 'the inspector line');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    await visit(Number(httpPort), 'seen.localhost', { path: '/watched' });
    const requests = await within(
      new Promise<{ path: string; status: number }[]>((resolve, reject) =>
        http
          .get(new URL('/api/requests', url), (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve(JSON.parse(text) as { path: string; status: number }[]));
          })
          .on('error', reject),
      ),
      10_000,
      'the API',
    );
    assert.deepEqual(
      requests.map((r) => [r.path, r.status]),
      [['/watched', 200]],
    );
  } finally {
    await killAll(live);
    await service.close();
  }
});
