#!/usr/bin/env node
/** Entry of `aio`: the only place that ends the process with a code. */
import { main } from './program.js';

process.exitCode = await main(process.argv);
