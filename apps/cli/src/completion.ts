import type { Command } from 'commander';

/**
 * Adds shell completion to the program through @bomb.sh/tab's commander adapter (commander has
 * none of its own): `cairn completion bash|zsh|fish|powershell` prints a script to source, and
 * that script calls the hidden `cairn complete -- ARGS…` at each TAB, which answers from the
 * program's own commands, options and option choices (so a new flag completes without more code).
 * The package is ESM-only, hence the dynamic import; it runs only when the CLI is started for real
 * (main.ts), not under Jest, which cannot load it (tools/e2e tests it on the built CLI).
 */
export async function addCompletion(program: Command): Promise<void> {
  const { default: tab } = await import('@bomb.sh/tab/commander');
  tab(program, { completionCommandName: 'completion' });
}
