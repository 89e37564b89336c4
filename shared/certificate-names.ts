// The names a certificate can be reached by, as Node's host name check reads them: both
// sides need them (the server prints its self-signed certificate's names, the client says
// which names a certificate it rejected does carry).
import net from 'node:net';

/** An IP address as Node's host name check compares it: IPv6 lowercase and shortened
 * (`2001:DB8:0:0:0:0:0:1` → `2001:db8::1`), IPv4 as is. */
export function canonicalIp(ip: string): string {
  return net.isIPv6(ip) ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** What a certificate says about itself, as `tls.PeerCertificate` (and
 * `X509Certificate#toLegacyObject()`) have it. */
export interface CertificateSubject {
  subject?: { CN?: string | string[] } | null;
  subjectaltname?: string;
}

// One `TYPE:value` of Node's subjectaltname text; a value with a comma or quote in it is
// written as a JSON string.
const ALT_NAME = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;

const HOST_LIKE = /^[A-Za-z0-9*](?:[A-Za-z0-9*.-]*[A-Za-z0-9])?$/;

/** The host names and IP addresses a client can reach the certificate's owner by, in the
 * certificate's order: its DNS and IP subject alternative names, and (as Node's host name
 * check does, when there is no DNS name among them) its common name if it reads as one. */
export function certificateNames(cert: CertificateSubject): string[] {
  const dns: string[] = [];
  const names: string[] = [];
  const text = cert.subjectaltname ?? '';
  ALT_NAME.lastIndex = 0;
  for (let match = ALT_NAME.exec(text); match !== null && match[0] !== ''; match = ALT_NAME.exec(text)) {
    const [, type = '', written = ''] = match;
    let value = written;
    if (written.startsWith('"')) {
      try {
        value = String(JSON.parse(written));
      } catch {
        continue;
      }
    }
    if (type === 'DNS') {
      dns.push(value);
      names.push(value);
    } else if (type === 'IP Address') {
      names.push(canonicalIp(value));
    }
  }
  // A common name is often a label ("burrow relay"), not a host: only one that reads as a
  // host name counts.
  const cn = cert.subject?.CN;
  if (dns.length === 0 && cn !== undefined)
    names.unshift(...(Array.isArray(cn) ? cn : [cn]).filter((name) => HOST_LIKE.test(name)));
  return [...new Set(names)];
}
