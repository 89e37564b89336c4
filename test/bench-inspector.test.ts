// Figure 8's arithmetic (bench/measure-inspector.ts): the sides' means and the interval
// of the extra CPU, block pair by block pair.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspectorFigure, interval } from '../bench/measure-inspector.ts';

test('interval: the mean ± 2 standard errors', () => {
  // mean 2; sample variance ((1)^2 + 0 + (1)^2) / 2 = 1; standard error 1/sqrt(3)
  const { mean, low, high } = interval([1, 2, 3]);
  assert.equal(mean, 2);
  assert.ok(Math.abs(low - (2 - 2 / Math.sqrt(3))) < 1e-9);
  assert.ok(Math.abs(high - (2 + 2 / Math.sqrt(3))) < 1e-9);
  // One value says nothing about the spread.
  assert.ok(Number.isNaN(interval([5]).low));
});

test('inspectorFigure: means per side, and on − off per pair', () => {
  const side = (client: number, clientMain: number, relay: number) => ({ client, clientMain, relay });
  const figure = inspectorFigure(
    [
      { on: side(110, 90, 50), off: side(100, 85, 52) },
      { on: side(130, 95, 48), off: side(110, 88, 47) },
    ],
    100,
  );
  assert.equal(figure.connections, 200);
  assert.equal(figure.blocks, 2);
  assert.deepEqual(figure.on, side(120, 92.5, 49));
  assert.deepEqual(figure.off, side(105, 86.5, 49.5));
  assert.equal(figure.extra.client.mean, 15); // (10 + 20) / 2
  assert.equal(figure.extra.clientMain.mean, 6); // (5 + 7) / 2
  assert.equal(figure.extra.relay.mean, -0.5); // (-2 + 1) / 2
  assert.ok(figure.extra.client.low < 15 && figure.extra.client.high > 15);
});
