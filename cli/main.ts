#!/usr/bin/env node
// The `burrow` executable (package.json "bin"): everything else is in command.ts.
import { hideBin } from 'yargs/helpers';
import { main } from './command.ts';

process.exitCode = await main(hideBin(process.argv), process.env);
