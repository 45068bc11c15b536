import type { Command } from 'commander';

const SHELLS = ['zsh', 'bash', 'fish', 'powershell'];

/**
 * Adds shell completion to the program through @bomb.sh/tab's commander adapter (commander has
 * none of its own): `cairn completion bash|zsh|fish|powershell` prints a script to source, and
 * that script calls the hidden `cairn complete -- ARGS…` at each TAB, which answers from the
 * program's own commands, options and option choices (so a new flag completes without more code).
 *
 * The package is ESM-only and takes 50-100 ms to load, so it is imported only when `argv` names
 * one of those two commands; otherwise a stand-in `completion <shell>` keeps it in `--help`. It
 * runs only when the CLI is started for real (main.ts), not under Jest, which cannot load it
 * (tools/e2e tests it on the built CLI).
 */
export async function addCompletion(program: Command, argv: string[]): Promise<void> {
  if (argv.slice(2).some((a) => a === 'completion' || a === 'complete')) {
    const { default: tab } = await import('@bomb.sh/tab/commander');
    tab(program, { completionCommandName: 'completion' });
    return;
  }
  program
    .command('completion')
    .description('Generate shell completion scripts')
    .argument('<shell>', `Shell type for completion script (choices: ${SHELLS.map((s) => `"${s}"`).join(', ')})`)
    .action(() => {
      throw new Error('unreachable: argv names completion, so the real command was added');
    });
}
