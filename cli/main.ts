// Entry point of the `gramhd` command line: one yargs command module per file in cli/commands/.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.ts';

const cli = yargs(hideBin(process.argv))
  .scriptName('gramhd')
  .usage('$0 <command> [options]\n\nGRAM-HD on a WebGPU engine: render, train, evaluate and benchmark.')
  .strict()
  .demandCommand(1, 'Name a command; `gramhd --help` lists them.')
  .recommendCommands()
  .wrap(Math.min(110, process.stdout.columns || 110))
  .fail((message, error, y) => {
    if (error) {
      // a data-parallel check prints its message on every rank itself (train/collective.ts)
      if (!(error as { reported?: boolean }).reported) console.error(`gramhd: ${error.message}`);
      if (process.env.GRAMHD_DEBUG) console.error(error.stack);
    } else {
      console.error(y.help().toString());
      console.error(`\ngramhd: ${message}`);
    }
    process.exit(1);
  });
for (const command of commands) cli.command(command);
await cli.parseAsync();
