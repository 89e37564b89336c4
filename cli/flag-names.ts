// Library messages name library options, in backticks (`tls.ca`); a CLI user sets flags
// (--tls-ca). This is the one table from the one to the other, and every event the CLI
// prints goes through inFlags() (cli/run.ts), so that its library errors and warnings name
// what the user can type. Pure.
import type { ClientOptions, ServerOptions } from '../index.ts';
import type { OutputEvent } from './output.ts';

export type Side = 'server' | 'client';

/** `tls` and `tls.ca`: an option, and the options of an option that is an object. */
type OptionPath<Options> = {
  [Key in keyof Options & string]-?: Key | `${Key}.${Inner<NonNullable<Options[Key]>>}`;
}[keyof Options & string];
type Inner<Value> = Value extends string | number | boolean | Buffer | readonly unknown[]
  ? never
  : Value extends object
    ? keyof Value & string
    : never;

/** The names of the self-signed certificate of `burrow server --tls`: the `names` argument
 * of loadOrCreateCertificate (no ServerOptions option: the CLI makes the certificate). */
type CertificateNames = 'names';

/** Each side's options as its messages name them → the flags that set them. By side: the
 * server's `tls.cert` is --tls-cert, the client's (its own certificate) --tls-client-cert.
 * A client message may advise on the server (`names`); the secret is said every way the
 * CLI takes it. */
export const FLAGS_FOR_OPTIONS: {
  server: Partial<Record<OptionPath<ServerOptions> | CertificateNames, string>>;
  client: Partial<Record<OptionPath<ClientOptions> | CertificateNames, string>>;
} = {
  server: {
    'tls.cert': '--tls-cert',
    'tls.key': '--tls-key',
    names: '--tls-name',
    httpPort: '--http-port',
    httpsPort: '--https-port',
    httpsCert: '--https-cert',
    httpsKey: '--https-key',
    domain: '--domain',
    reservedNames: '--reserved-names',
  },
  client: {
    server: '--server',
    dataPort: '--data-port',
    secret: '--secret-file, BURROW_SECRET or --secret',
    tls: '--tls',
    'tls.ca': '--tls-ca',
    'tls.fingerprint': '--tls-fingerprint',
    'tls.cert': '--tls-client-cert',
    'tls.key': '--tls-client-key',
    names: '--tls-name',
  },
};

/** `message` with each backticked option of `side` it names replaced by its flags; any
 * other backticked text is left as it is. */
export function flagsIn(message: string, side: Side): string {
  const flags: Partial<Record<string, string>> = FLAGS_FOR_OPTIONS[side];
  return message.replace(/`([^`]+)`/g, (quoted, option: string) => flags[option] ?? quoted);
}

/** `event` as the CLI prints it: its message (a library error or warning, a refusal), or
 * the text of a trace's event line (which may quote an error), in flags. Protocol lines are
 * traced as they went over the wire. */
export function inFlags(event: OutputEvent, side: Side): OutputEvent {
  if (event.event === 'trace') return event.kind === 'event' ? { ...event, text: flagsIn(event.text, side) } : event;
  return 'message' in event ? { ...event, message: flagsIn(event.message, side) } : event;
}
