// A mistake in the command line or environment: cli/command.ts prints it as one line, with
// a pointer to --help, and exits 2. Its own module so that every cli/ file may throw it.

export class UsageError extends Error {}
