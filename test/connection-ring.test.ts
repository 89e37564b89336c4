// The inspector's ring of kept connections, without sockets: it keeps the last N, lists
// them newest first, and a reused slot shows nothing of the connection it held before.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionRing } from '../client/inspector/connection-ring.ts';

const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('ConnectionRing', () => {
  test('keeps the last N connections, newest first, and forgets the ids of those it dropped', () => {
    const ring = new ConnectionRing(3);
    for (let i = 1; i <= 3; i++) ring.open(`c${i}`, 'tcp://relay:1', i);
    assert.deepEqual(
      ring.list().map((record) => record.id),
      ['c3', 'c2', 'c1'],
    );
    for (let i = 4; i <= 7; i++) ring.open(`c${i}`, 'tcp://relay:1', i);
    assert.equal(ring.size, 3);
    assert.deepEqual(
      ring.list().map((record) => record.id),
      ['c7', 'c6', 'c5'],
    );
    for (const gone of ['c1', 'c2', 'c3', 'c4']) assert.equal(ring.get(gone), undefined, gone);
    assert.equal(ring.get('c5')?.id, 'c5');
  });

  test('a reused slot starts empty: no field or timeline step of the connection before', () => {
    const ring = new ConnectionRing(1);
    const first = ring.open('a', 'tcp://relay:1', 100);
    first.addStep('announced', 100, 'tcp://relay:1');
    first.addStep('joined', 101, 'localhost:3000');
    first.addStep('closed', 102, 'reset');
    Object.assign(first, { local: 'localhost:3000', visitor: '203.0.113.9:5', state: 'closed', ending: 'reset' });
    Object.assign(first, { bytesIn: 10, bytesOut: 20, durationMs: 2 });
    const second = ring.open('b', 'tcp://relay:2', 200);
    second.addStep('announced', 200, undefined);
    assert.deepEqual(asJson(ring.list()), [
      {
        id: 'b',
        url: 'tcp://relay:2',
        local: '',
        startedAt: 200,
        state: 'opening',
        bytesIn: 0,
        bytesOut: 0,
        timeline: [{ phase: 'announced', at: 200 }],
      },
    ]);
  });

  test('a timeline keeps at most 32 steps, in order', () => {
    const record = new ConnectionRing(2).open('a', 'u', 0);
    for (let i = 0; i < 40; i++) record.addStep('visitor-fin', i, `step ${i}`);
    const { timeline } = record;
    assert.equal(timeline.length, 32);
    assert.deepEqual(timeline[31], { phase: 'visitor-fin', at: 31, detail: 'step 31' });
  });

  test('an id seen twice names the newer record, also after the older one is dropped', () => {
    const ring = new ConnectionRing(2);
    ring.open('same', 'u', 1);
    const newer = ring.open('same', 'u', 2);
    ring.open('other', 'u', 3); // drops the older "same"
    assert.equal(ring.get('same'), newer);
  });

  test('a history of 0 keeps one connection rather than growing', () => {
    const ring = new ConnectionRing(0);
    for (let i = 0; i < 5; i++) ring.open(`c${i}`, 'u', i);
    assert.equal(ring.size, 1);
    assert.equal(ring.list()[0]?.id, 'c4');
  });
});
