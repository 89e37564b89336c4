// Options and their one table of defaults, on either side: an option left out, or given as
// undefined, takes the table's value.

/** `options` over `defaults`, skipping options that are undefined. */
export function withDefaults<Defaults extends object, Options extends object>(
  defaults: Defaults,
  options: Options,
): Defaults & Options {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  return { ...defaults, ...(given as Options) };
}
