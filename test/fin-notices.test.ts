// FinNotices (shared/fin-notices.ts) on its own: notices owed while no control connection
// is up go out at the next wake(), at most MAX_OWED of them; a peer known to be gone gets
// none; FINs waiting for a notice are answered by it, by a gone peer, or by close().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FinNotices, MAX_OWED, type Reach } from '../shared/fin-notices.ts';

/** A control connection that records what it was sent, and a switch for where notices go. */
function peer() {
  const lines: string[] = [];
  const sink = { send: (line: string) => void lines.push(line) };
  let where: Reach = undefined;
  return {
    lines,
    reach: (): Reach => where,
    goTo: (to: 'sink' | 'gone' | undefined) => (where = to === 'sink' ? sink : to),
  };
}

test('FinNotices: a notice owed while no connection is up goes out at the next wake(), once', () => {
  const notices = new FinNotices(60_000);
  const { lines, reach, goTo } = peer();
  notices.track('id1', 'P', reach).sent();
  assert.deepEqual(lines, [], 'nowhere to send it yet');
  goTo('sink');
  notices.wake();
  notices.wake();
  assert.deepEqual(lines, ['FIN id1\n']);
  notices.close();
});

test('FinNotices: at most MAX_OWED notices are owed; the oldest goes first', () => {
  const notices = new FinNotices(60_000);
  const { lines, reach, goTo } = peer();
  for (let i = 0; i <= MAX_OWED; i++) notices.track(`id${i}`, 'P', reach).sent();
  goTo('sink');
  notices.wake();
  assert.equal(lines.length, MAX_OWED);
  assert.equal(lines[0], 'FIN id1\n', 'id0, the oldest, was dropped');
  assert.equal(lines.at(-1), `FIN id${MAX_OWED}\n`);
  notices.close();
});

test('FinNotices: a notice for a peer that is gone is not sent, and not kept', () => {
  const notices = new FinNotices(60_000);
  const { lines, reach, goTo } = peer();
  goTo('gone');
  notices.track('id1', 'P', reach).sent();
  goTo('sink');
  notices.wake();
  assert.deepEqual(lines, []);
  notices.close();
});

test('FinNotices: a waiting FIN is answered yes by its notice, no when its peer is gone at a wake(), no at close()', () => {
  const notices = new FinNotices(60_000);
  const { reach, goTo } = peer();
  const away = peer(); // reconnecting: never gone, never back
  const answers: Array<[string, boolean]> = [];
  for (const id of ['noticed', 'replaced']) {
    notices.track(id, 'P', reach).confirm((chosen) => answers.push([id, chosen]));
  }
  notices.track('closed', 'Q', away.reach).confirm((chosen) => answers.push(['closed', chosen]));
  notices.received('noticed', 'someone else');
  assert.deepEqual(answers, [], "another peer's notice answers nothing");
  notices.received('noticed', 'P');
  goTo('gone');
  notices.wake();
  assert.equal(answers.length, 2, 'the reconnecting peer still waits');
  notices.close();
  assert.deepEqual(answers, [
    ['noticed', true],
    ['replaced', false],
    ['closed', false],
  ]);
});
