// The PROXY protocol header, byte for byte against the HAProxy specification's layout.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressBytes, describeProxyHeader, parseEndpoint, proxyHeader } from '../shared/proxy-header.ts';

const SIGNATURE = '0d0a0d0a000d0a515549540a';

describe('parseEndpoint (the addr:port form CONNECTION carries)', () => {
  test('IPv4 and bracketed IPv6, a zone dropped', () => {
    assert.deepEqual(parseEndpoint('203.0.113.9:51234'), { address: '203.0.113.9', port: 51234 });
    assert.deepEqual(parseEndpoint('[2001:db8::1]:0'), { address: '2001:db8::1', port: 0 });
    assert.deepEqual(parseEndpoint('[fe80::1%eth0]:5'), { address: 'fe80::1', port: 5 });
  });

  test('anything else is undefined', () => {
    for (const text of [
      undefined,
      '',
      '1.2.3.4',
      '1.2.3.4:65536',
      '2001:db8::1:5',
      '[1.2.3.4]:5',
      'host.example:80',
      '[::1]',
      '[zz::1]:5',
      '256.1.1.1:5',
      '1.2.3.4:-1',
    ]) {
      assert.equal(parseEndpoint(text), undefined, String(text));
    }
  });
});

describe('addressBytes', () => {
  test('IPv4: four bytes', () => {
    assert.equal(addressBytes('203.0.113.9').toString('hex'), 'cb007109');
  });

  test('IPv6: :: expanded wherever it is, a dotted IPv4 tail, full form', () => {
    const cases: [string, string][] = [
      ['::', '00000000000000000000000000000000'],
      ['::1', '00000000000000000000000000000001'],
      ['1::', '00010000000000000000000000000000'],
      ['2001:db8::1', '20010db8000000000000000000000001'],
      ['2001:db8:0:0:1::2', '20010db8000000000001000000000002'],
      ['fe80::a:b:c:d', 'fe80000000000000000a000b000c000d'],
      ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
      ['::ffff:203.0.113.9', '00000000000000000000ffffcb007109'],
      ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
      ['ABCD::EF', 'abcd00000000000000000000000000ef'],
    ];
    for (const [address, hex] of cases) assert.equal(addressBytes(address).toString('hex'), hex, address);
  });

  test('not an address: a TypeError', () => {
    assert.throws(() => addressBytes('example.com'), TypeError);
  });
});

describe('proxyHeader v1 (text)', () => {
  test('TCP4: source, destination, source port, destination port, CRLF', () => {
    const header = proxyHeader('v1', { address: '203.0.113.9', port: 51234 }, { address: '198.51.100.7', port: 41234 });
    assert.equal(header.toString('latin1'), 'PROXY TCP4 203.0.113.9 198.51.100.7 51234 41234\r\n');
  });

  test('TCP6 without brackets', () => {
    const header = proxyHeader('v1', { address: '2001:db8::1', port: 5 }, { address: '::1', port: 40000 });
    assert.equal(header.toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 5 40000\r\n');
  });

  test('families that differ: IPv4 written as IPv4-mapped IPv6', () => {
    const header = proxyHeader('v1', { address: '203.0.113.9', port: 5 }, { address: '2001:db8::7', port: 40000 });
    assert.equal(header.toString('latin1'), 'PROXY TCP6 ::ffff:203.0.113.9 2001:db8::7 5 40000\r\n');
  });

  test('an unknown address: PROXY UNKNOWN', () => {
    assert.equal(proxyHeader('v1', undefined, { address: '1.2.3.4', port: 5 }).toString('latin1'), 'PROXY UNKNOWN\r\n');
    assert.equal(proxyHeader('v1', { address: '1.2.3.4', port: 5 }, undefined).toString('latin1'), 'PROXY UNKNOWN\r\n');
  });

  test('the longest header fits the 107 bytes the spec allows', () => {
    const long = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    assert.equal(proxyHeader('v1', { address: long, port: 65535 }, { address: long, port: 65535 }).length, 104);
  });
});

describe('proxyHeader v2 (binary)', () => {
  test('TCP over IPv4: signature, 0x21, 0x11, length 12, addresses, ports', () => {
    const header = proxyHeader('v2', { address: '203.0.113.9', port: 51234 }, { address: '198.51.100.7', port: 41234 });
    assert.equal(header.toString('hex'), `${SIGNATURE}21` + '11' + '000c' + 'cb007109' + 'c6336407' + 'c822' + 'a112');
    assert.equal(header.length, 28);
  });

  test('TCP over IPv6: family 0x21, length 36', () => {
    const header = proxyHeader('v2', { address: '2001:db8::1', port: 5 }, { address: '::1', port: 40000 });
    assert.equal(
      header.toString('hex'),
      `${SIGNATURE}21` +
        '21' +
        '0024' +
        '20010db8000000000000000000000001' +
        '00000000000000000000000000000001' +
        '0005' +
        '9c40',
    );
    assert.equal(header.length, 52);
  });

  test('families that differ: IPv6 with the IPv4 address mapped', () => {
    const header = proxyHeader('v2', { address: '203.0.113.9', port: 5 }, { address: '::1', port: 40000 });
    assert.equal(header.subarray(12, 16).toString('hex'), '21210024');
    assert.equal(header.subarray(16, 32).toString('hex'), '00000000000000000000ffffcb007109');
  });

  test('an unknown address: command PROXY, family UNSPEC, no address block', () => {
    assert.equal(proxyHeader('v2', undefined, undefined).toString('hex'), `${SIGNATURE}21000000`);
  });
});

describe('describeProxyHeader (for traces)', () => {
  test('v1 as its text; v2 as its fields in hex', () => {
    assert.equal(
      describeProxyHeader(proxyHeader('v1', { address: '1.2.3.4', port: 5 }, { address: '6.7.8.9', port: 10 })),
      'PROXY TCP4 1.2.3.4 6.7.8.9 5 10',
    );
    assert.equal(
      describeProxyHeader(proxyHeader('v2', { address: '1.2.3.4', port: 5 }, { address: '6.7.8.9', port: 10 })),
      `v2, 28 bytes: ${SIGNATURE} 21 11 000c 01020304 06070809 0005 000a`,
    );
    assert.equal(describeProxyHeader(proxyHeader('v2', undefined, undefined)), `v2, 16 bytes: ${SIGNATURE} 21 00 0000`);
  });
});
