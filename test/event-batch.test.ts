// The inspector's batch (client/inspector/event-batch.ts): events and moments come out in
// the order they went in, a full batch is handed on by itself, and nothing is kept after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBatch } from '../client/inspector/event-batch.ts';

function recorder(): { seen: string[]; batch: EventBatch<{ name: string }> } {
  const seen: string[] = [];
  const batch = new EventBatch<{ name: string }>(4, {
    event: (event) => seen.push(`event ${event.name}`),
    phase: (id, phase, at, detail) => seen.push(`${id} ${phase} at ${at}${detail === undefined ? '' : ` (${detail})`}`),
  });
  return { seen, batch };
}

test('events and moments come out in the order they went in, on flush', () => {
  const { seen, batch } = recorder();
  batch.pushPhase('a', 'announced', 1, 'tcp://x:1');
  batch.push({ name: 'joined' });
  batch.pushPhase('a', 'closed', 3, undefined);
  assert.deepEqual(seen, [], 'nothing before a flush');
  batch.flush();
  assert.deepEqual(seen, ['a announced at 1 (tcp://x:1)', 'event joined', 'a closed at 3']);
  batch.flush();
  assert.equal(seen.length, 3, 'each once');
});

test('a full batch is handed on by itself: at most `size` are kept', () => {
  const { seen, batch } = recorder();
  for (let i = 1; i <= 9; i++) batch.pushPhase(`c${i}`, 'dialed', i, undefined);
  assert.deepEqual(
    seen.map((line) => line.split(' ')[0]),
    ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'],
  );
  batch.flush();
  assert.equal(seen.at(-1), 'c9 dialed at 9');
});

test('clear() forgets what was kept', () => {
  const { seen, batch } = recorder();
  batch.push({ name: 'x' });
  batch.pushPhase('a', 'failed', 6, 'refused');
  batch.clear();
  batch.flush();
  assert.deepEqual(seen, []);
});

test('an entry whose handling throws does not stop the rest; each is handed on once', () => {
  const handed: string[] = [];
  const batch = new EventBatch<string>(8, {
    event: (event) => {
      handed.push(event);
      if (event === 'bad') throw new Error('bad');
    },
    phase: () => {},
  });
  batch.push('bad');
  batch.push('good');
  assert.throws(() => batch.flush(), /bad/);
  batch.flush();
  assert.deepEqual(handed, ['bad', 'good']);
});
