// Every CLI command, in the order `gramhd --help` lists them.
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.ts';
import { convertCommand } from './convert.ts';
import { dataCommand } from './data.ts';
import { evalCommand } from './eval.ts';
import { renderCommand } from './render.ts';
import { trainCommand } from './train.ts';
import { verifyCommand } from './verify.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [renderCommand, convertCommand, verifyCommand, benchCommand, dataCommand, trainCommand, evalCommand];
