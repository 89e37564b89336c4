// Names for HTTP tunnels that did not ask for one: readable, easy to say aloud in a
// classroom (`brave-otter-42`), and random enough (about 64,000 of them) that a free one is
// found at once. They are addresses, not secrets: a tunnel that must stay private uses
// --auth.
import { randomInt } from 'node:crypto';

// prettier-ignore
const ADJECTIVES = [
  'amber', 'bold', 'brave', 'bright', 'calm', 'clever', 'cosy', 'crisp', 'eager', 'fair', 'fancy', 'fast',
  'gentle', 'glad', 'golden', 'happy', 'jolly', 'keen', 'kind', 'lively', 'lucky', 'merry', 'mighty', 'neat',
  'nimble', 'proud', 'quick', 'quiet', 'rapid', 'shiny', 'smart', 'snowy', 'sunny', 'swift', 'tidy', 'witty',
];
// prettier-ignore
const ANIMALS = [
  'badger', 'bear', 'beaver', 'bison', 'crane', 'deer', 'dolphin', 'eagle', 'falcon', 'ferret', 'finch', 'fox',
  'gecko', 'heron', 'ibis', 'koala', 'lemur', 'lynx', 'marten', 'mole', 'moose', 'newt', 'otter', 'owl',
  'panda', 'puffin', 'quail', 'rabbit', 'raven', 'robin', 'seal', 'stoat', 'swan', 'tiger', 'walrus', 'wombat',
];

const pick = (words: readonly string[]): string => words[randomInt(words.length)] ?? 'burrow';

/** `adjective-animal-NN`: a valid DNS label. */
export const randomName = (): string => `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${randomInt(10, 100)}`;
